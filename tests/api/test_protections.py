"""The protections' own logic, in process: client addresses behind proxies, what an access line may
show, masked logs, event-stream tickets, and a misconfiguration that stops start-up."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from api.deps import agent_from_ticket, issue_ticket
from api.logs import MaskingFormatter, redact_path
from api.middleware import ClientAddressMiddleware
from bot.config import Settings
from tests.server import ROOT

TOKEN_A, TOKEN_B = "alice-token-0123456789", "bob-token-9876543210"


def seen_client(trusted: str, peer: tuple[str, int], forwarded: str | None) -> str:
    """The client address the app behind ClientAddressMiddleware sees."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    scope = {"type": "http", "client": peer, "headers": headers, "path": "/v1/chat"}
    asyncio.run(ClientAddressMiddleware(app, trusted)(scope, None, None))  # type: ignore[arg-type]
    return str(seen[0])


@pytest.mark.parametrize(("trusted", "peer", "forwarded", "expected"), [
    # No proxy configured: the header is nobody's word, from anywhere.
    ("", ("127.0.0.1", 51000), "8.8.8.8", "127.0.0.1"),
    ("", ("203.0.113.9", 51000), "8.8.8.8", "203.0.113.9"),
    # A configured proxy: the shopper is the last address it did not add itself.
    ("127.0.0.1", ("127.0.0.1", 51000), "8.8.8.8", "8.8.8.8"),
    ("127.0.0.1,10.0.0.0/8", ("127.0.0.1", 51000), "1.2.3.4, 8.8.8.8, 10.1.2.3", "8.8.8.8"),
    ("127.0.0.1", ("127.0.0.1", 51000), None, "127.0.0.1"),
    # Someone else than the proxy sends the header: ignored.
    ("127.0.0.1", ("198.51.100.7", 51000), "8.8.8.8", "198.51.100.7"),
    # A server that rewrote the client from the header itself (port 0), with no proxy configured:
    # one shared bucket, never the forged address.
    ("", ("8.8.8.8", 0), "8.8.8.8", "forwarded-untrusted"),
])
def test_client_address_comes_from_a_proxy_only_when_it_is_trusted(trusted: str, peer: tuple[str, int],
                                                                     forwarded: str | None, expected: str) -> None:
    assert seen_client(trusted, peer, forwarded) == expected


@pytest.mark.parametrize(("path", "shown"), [
    ("/v1/chat/Ab3_-x9QzLkP0aZ/messages?after=12", "/v1/chat/{session}/messages?after=12"),
    ("/v1/chat/Ab3_-x9QzLkP0aZ/events", "/v1/chat/{session}/events"),
    ("/v1/agent/events?ticket=abc.123.sig", "/v1/agent/events?[redacted]"),
    ("/v1/agent/events?%74oken=s3cret&status=waiting", "/v1/agent/events?[redacted]&status=waiting"),
    ("/v1/handoffs?SECRET7", "/v1/handoffs?[redacted]"),  # a name alone can be the secret
    ("/v1/handoffs?status=SECRET6&before=%53ECRET", "/v1/handoffs?status=[redacted]&before=[redacted]"),
    ("/v1/handoffs?status=resolved&limit=50&before=9", "/v1/handoffs?status=resolved&limit=50&before=9"),
    ("/v1/chat", "/v1/chat"),
])
def test_access_lines_hold_no_secret_and_no_session(path: str, shown: str) -> None:
    assert redact_path(path) == shown


def test_logged_errors_are_masked_tracebacks_included() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(MaskingFormatter(logging.Formatter("%(message)s")))
    logger = logging.getLogger("tests.masking")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("INSERT ... ('电话13812345678 地址北京市朝阳区建国路88号3单元502室')")
        except RuntimeError:
            logger.exception("failed for 13812345678")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "RuntimeError" in text and "[手机号]" in text and "[地址]" in text
    assert "13812345678" not in text and "建国路88号" not in text


def test_tickets_name_their_agent_expire_and_die_with_the_token() -> None:
    settings = Settings(agent_tokens=f"alice:{TOKEN_A},bob:{TOKEN_B}")
    ticket = issue_ticket("alice", settings, now=1000)
    assert TOKEN_A not in ticket
    assert agent_from_ticket(ticket, settings, now=1030) == "alice"
    assert agent_from_ticket(ticket, settings, now=1061) is None  # a minute, then no more
    name, expires, signature = ticket.split(".")
    assert agent_from_ticket(f"{name}.{int(expires) + 600}.{signature}", settings, now=1030) is None
    bob = issue_ticket("bob", settings, now=1000).split(".")[0]
    assert agent_from_ticket(f"{bob}.{expires}.{signature}", settings, now=1030) is None
    revoked = Settings(agent_tokens=f"alice:{TOKEN_A}-new,bob:{TOKEN_B}")
    assert agent_from_ticket(ticket, revoked, now=1030) is None
    for junk in ("", "a.b", "a.b.c.d", "%%%.1.x", "YQ.notanumber.x"):
        assert agent_from_ticket(junk, settings, now=1030) is None


@pytest.mark.parametrize(("values", "says"), [
    ({"agent_tokens": "alice:tiny7"}, "token of agent 'alice' is shorter than 8"),
    ({"agent_tokens": f"alice:{TOKEN_A},bob:{TOKEN_A}"}, "one token to several agents (alice, bob)"),
    ({"agent_tokens": "alice"}, "entry 1 is not 'name:token'"),
    ({"admin_token": "abc"}, "KEFU_ADMIN_TOKEN is shorter"),
    ({"agent_tokens": f"alice:{TOKEN_A}", "admin_token": TOKEN_A}, "also another's token"),
    ({"manager_tokens": f"mei:{TOKEN_A}", "admin_token": TOKEN_A}, "also another's token"),
    ({"manager_tokens": "mei"}, "KEFU_MANAGER_TOKENS entry 1 is not 'name:token'"),
    ({"webhook_url": "https://hooks.example/x"}, "needs KEFU_WEBHOOK_SECRET"),
    ({"trusted_proxies": "127.0.0.1,nginx"}, "'nginx' is not an IP address"),
    ({"agent_tokens": f"{'a' * 65}:{TOKEN_A}"}, "an agent's name is at most 64 characters"),
    ({"rate_limit_window": 0}, "greater than or equal to 1"),
    ({"rate_limit_ip": 0}, "greater than or equal to 1"),
    ({"max_body_bytes": -1}, "greater than or equal to 1024"),
    ({"agent_tokens": f"alice:{TOKEN_A}", "agent_names": "alice:小美,bob:阿强"}, "agents KEFU_AGENT_TOKENS does not "
                                                                                  "have: bob"),
    ({"agent_tokens": f"alice:{TOKEN_A}", "agent_names": "alice"}, "KEFU_AGENT_NAMES entry 1 is not"),
    ({"agent_tokens": f"alice:{TOKEN_A}", "agent_names": f"alice:{'美' * 33}"}, "at most 32 characters"),
])
def test_a_misconfiguration_is_refused_with_what_to_fix(values: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**values)  # type: ignore[arg-type]
    assert says in str(info.value)
    for secret in (TOKEN_A, "tiny7"):
        assert secret not in str(info.value)  # a wrong setting may be a secret: never echoed


@pytest.mark.slow
def test_kefu_serve_stops_before_binding_on_a_misconfiguration() -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")},
           "KEFU_AGENT_TOKENS": f"alice:{TOKEN_A},bob:{TOKEN_A}", "KEFU_PORT": "1"}
    out = subprocess.run([sys.executable, "-m", "training", "serve"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert "one token to several agents (alice, bob); give each agent a token of their own" in out.stderr
    assert TOKEN_A not in out.stderr and "Traceback" not in out.stderr
