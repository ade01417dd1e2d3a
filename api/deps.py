"""Dependencies: the conversation service, settings and agent authentication."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.config import Settings
from bot.dialogue.voice import say
from bot.service.conversations import Conversations

T = TypeVar("T")
# The shopper's chat turns run on threads of their own, few: a turn holds the GIL most of its
# time, so more threads than turns that can progress at once only add switches between them.
TURN_THREADS = 4
_turns = ThreadPoolExecutor(TURN_THREADS, thread_name_prefix="kefu-turn")


async def in_turn_thread(fn: Callable[[], T]) -> T:
    """`fn()` on a turn thread (asyncio's executor: a cheaper hand-off than anyio's thread pool)."""
    return await asyncio.get_running_loop().run_in_executor(_turns, fn)


_bearer = HTTPBearer(auto_error=False)
# The Authorization header's bearer token, or None (the routes say 401 themselves, as JSON).
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_conversations(request: Request) -> Conversations:
    return request.app.state.conversations  # type: ignore[no-any-return]


async def _conversations(request: Request) -> Conversations:
    """ConversationsDep's: a coroutine, because FastAPI hands every plain `def` dependency to a
    thread of its pool and back, which costs more than reading app.state."""
    return get_conversations(request)


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _agent_for(token: str, agents: dict[str, str]) -> str | None:
    """Constant-time comparison against every configured token."""
    found = None
    for known, name in agents.items():
        if secrets.compare_digest(known.encode(), token.encode()):
            found = name
    return found


def bearer_name(creds: HTTPAuthorizationCredentials | None, tokens: dict[str, str], what: str) -> str:
    """The name a bearer token stands for among `tokens` (token -> name); 401 without a token, 403 for
    a wrong one (`what`: agent, admin, order)."""
    if creds is None:
        raise HTTPException(401, f"{what} token required", headers={"WWW-Authenticate": "Bearer"})
    name = _agent_for(creds.credentials, tokens)
    if name is None:
        raise HTTPException(403, f"invalid {what} token")
    return name


def current_agent(
    request: Request,
    creds: Bearer,
) -> str:
    """The agent's name for a valid bearer token (in the Authorization header only); 401 without one,
    403 for a wrong one."""
    return bearer_name(creds, get_app_settings(request).agents(), "agent")


# -- tickets for event streams -----------------------------------------------------------------
# A browser's EventSource cannot send headers, and a URL ends up in logs, proxies and histories:
# the stream takes a ticket instead of the agent's token. A ticket names the agent and when it
# expires, signed with that agent's own token (HMAC-SHA256): every process of the shop can check
# it, it dies with the token, and it opens one stream, within a minute (its use is remembered
# where the rate limits are counted, so in Redis when several processes serve).
TICKET_SECONDS = 60


def _sign(token: str, payload: str) -> str:
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue_ticket(agent: str, settings: Settings, now: float | None = None) -> str:
    token = next(t for t, name in settings.agents().items() if name == agent)
    name = base64.urlsafe_b64encode(agent.encode()).decode().rstrip("=")
    payload = f"{name}.{int((now or time.time()) + TICKET_SECONDS)}"
    return f"{payload}.{_sign(token, payload)}"


def agent_from_ticket(ticket: str, settings: Settings, now: float | None = None) -> str | None:
    """The agent a valid, unexpired ticket names; None otherwise."""
    try:
        name_b64, expires, signature = ticket.split(".")
        agent = base64.urlsafe_b64decode(name_b64 + "=" * (-len(name_b64) % 4)).decode()
        if int(expires) < (now or time.time()):
            return None
    except (ValueError, UnicodeDecodeError):
        return None
    payload = f"{name_b64}.{expires}"
    found = None
    for token, name in settings.agents().items():
        if name == agent and hmac.compare_digest(_sign(token, payload), signature):
            found = name
    return found


def stream_agent(
    request: Request,
    creds: Bearer,
    ticket: Annotated[str | None, Query(max_length=512, description="from POST /v1/agent/ticket (for EventSource, "
                                                                    "which cannot send headers)")] = None,
) -> str:
    """An event stream's agent: a bearer token, or a ticket in the URL."""
    if creds is not None or not ticket:
        return current_agent(request, creds)
    name = agent_from_ticket(ticket, get_app_settings(request))
    if name is None or not request.app.state.limiter.once(f"ticket:{ticket.rsplit('.', 1)[-1]}", TICKET_SECONDS):
        raise HTTPException(403, "invalid, expired or used ticket; ask POST /v1/agent/ticket for a new one")
    return name


def check_session_rate(request: Request, session_id: str | None) -> None:
    """Per-session limit for a POST that names its session in the body (429 with Retry-After)."""
    if not session_id:
        return
    s = get_app_settings(request)
    wait = request.app.state.limiter.hit(f"s:{session_id}", s.rate_limit_session, s.rate_limit_window)
    if wait:
        raise HTTPException(429, say(request.app.state.bot().kb.shop, "rate_limited"),
                            headers={"Retry-After": str(max(wait, 1))})


ConversationsDep = Annotated[Conversations, Depends(_conversations)]
AgentDep = Annotated[str, Depends(current_agent)]
StreamAgentDep = Annotated[str, Depends(stream_agent)]
