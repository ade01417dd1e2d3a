"""Dependencies: the conversation service, settings and agent authentication."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.config import Settings
from bot.conversation import Conversations

_bearer = HTTPBearer(auto_error=False)


def get_conversations(request: Request) -> Conversations:
    return request.app.state.conversations  # type: ignore[no-any-return]


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _agent_for(token: str, agents: dict[str, str]) -> str | None:
    """Constant-time comparison against every configured token."""
    found = None
    for known, name in agents.items():
        if secrets.compare_digest(known.encode(), token.encode()):
            found = name
    return found


def current_agent(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Query(description="for EventSource, which cannot send headers")] = None,
) -> str:
    """The agent's name for a valid bearer token; 401 without one, 403 for a wrong one."""
    given = creds.credentials if creds else token
    if not given:
        raise HTTPException(401, "agent token required", headers={"WWW-Authenticate": "Bearer"})
    name = _agent_for(given, get_app_settings(request).agents())
    if name is None:
        raise HTTPException(403, "invalid agent token")
    return name


def check_session_rate(request: Request, session_id: str | None) -> None:
    """Per-session limit for a POST that names its session in the body (429 with Retry-After)."""
    if not session_id:
        return
    s = get_app_settings(request)
    wait = request.app.state.limiter.hit(f"s:{session_id}", s.rate_limit_session, s.rate_limit_window)
    if wait:
        raise HTTPException(429, "亲，您发消息太快啦，请稍等片刻再试～", headers={"Retry-After": str(max(wait, 1))})


ConversationsDep = Annotated[Conversations, Depends(get_conversations)]
AgentDep = Annotated[str, Depends(current_agent)]
