"""Protections for an endpoint open to the internet: body size, rate limits, headers, CORS."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import Settings
from bot.dialogue.voice import say
from bot.service.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter

log = logging.getLogger(__name__)

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                                 b"connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"),
]


async def _json(send: Send, status: int, code: str, message: str,
                headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    if status == 408:  # the rest of the body may still come: end the connection with the answer
        headers = [*headers, (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


ADMIN_PREFIX = "/v1/admin/"
# A shopper's picture (api/routes/images.py): its own, larger limit.
IMAGE_UPLOAD = re.compile(r"^/v1/chat/[^/]+/images$")
# The shopper's endpoints, limited per address: kefu's chat, and Rasa's REST channel (api/routes/rasa.py).
SHOPPER_PREFIXES = ("/v1/chat", "/webhooks/rest/")


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether or not Content-Length says so; 408 for a body that
    does not arrive whole within `timeout` seconds (a slow or stalled client holds no worker)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float, admin_bytes: int | None = None,
                 image_bytes: int | None = None) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout
        self.admin_bytes = admin_bytes or max_bytes  # the manager's routes: a whole entry's examples
        self.image_bytes = image_bytes or max_bytes  # a shopper's picture

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.admin_bytes if scope["path"].startswith(ADMIN_PREFIX) else self.max_bytes
        if IMAGE_UPLOAD.match(scope["path"]):
            limit = self.image_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _json(send, 413, "too_large", f"request body over {limit} bytes")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        seen, complete, started = 0, False, False
        failure: tuple[int, str, str] | None = None

        async def limited() -> Message:
            nonlocal seen, complete, failure
            if complete:  # the body is in; later calls wait for the client to go (event streams)
                return await receive()
            try:  # asyncio.timeout_at, not wait_for: wait_for makes a task of every receive() (Python 3.11)
                async with asyncio.timeout_at(deadline):
                    msg = await receive()
            except TimeoutError:
                failure = (408, "timeout", f"request body not received within {self.timeout:g} s")
                raise _Refused from None
            seen += len(msg.get("body", b""))
            complete = msg["type"] != "http.request" or not msg.get("more_body", False)
            if seen > limit:
                failure = (413, "too_large", f"request body over {limit} bytes")
                raise _Refused
            return msg

        async def guarded(msg: Message) -> None:
            # The framework may catch _Refused and answer 400 itself: drop that answer.
            nonlocal started
            if failure and not started:
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited, guarded)
        except _Refused:
            pass
        if failure and not started:
            await _json(send, *failure)


class _Refused(Exception):
    pass


class RateLimitMiddleware:
    """Per-IP and per-session limits on the shopper's endpoints (429 with Retry-After)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, per_ip: int, per_session: int, window: int) -> None:
        self.app, self.limiter = app, limiter
        self.per_ip, self.per_session, self.window = per_ip, per_session, window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(SHOPPER_PREFIXES):
            return await self.app(scope, receive, send)
        ip = _client_ip(scope)
        wait = self.limiter.hit(f"ip:{ip}", self.per_ip, self.window)
        # /v1/chat/{session_id}/...; a body's session (POST /v1/chat, Rasa's sender) the route limits
        session = path.split("/")[3] if path.startswith("/v1/chat/") and path.count("/") >= 3 else ""
        if not wait and session:
            wait = self.limiter.hit(f"s:{session}", self.per_session, self.window)
        if wait:
            shop = scope["app"].state.bot().kb.shop
            return await _json(send, 429, "rate_limited", say(shop, "rate_limited"),
                               [(b"retry-after", str(max(wait, 1)).encode())])
        await self.app(scope, receive, send)


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ClientAddressMiddleware:
    """The shopper's address for rate limits: the connection's peer, or, when that peer is a proxy
    listed in KEFU_TRUSTED_PROXIES, the last address in X-Forwarded-For that is not itself a trusted
    proxy. Nobody else can choose their address by sending the header.

    uvicorn rewrites the client from X-Forwarded-For on its own when started without
    `--no-proxy-headers` (it trusts 127.0.0.1 by default): `kefu serve` turns that off. A client so
    rewritten shows port 0, which no TCP peer has; unless a proxy is configured, such requests share
    one bucket rather than let a forged header pick a fresh one.
    """

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted.split(",") if p.strip()]
        self._warned = False

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            host, port = scope["client"]
            forwarded = _header(scope, b"x-forwarded-for")
            if port == 0 and forwarded is not None and not self.networks:
                if not self._warned:
                    log.warning("the server rewrote client addresses from X-Forwarded-For; start it with "
                                "--no-proxy-headers (kefu serve does) and list proxies in KEFU_TRUSTED_PROXIES")
                    self._warned = True
                scope = {**scope, "client": ("forwarded-untrusted", 0)}
            elif forwarded is not None and self._trusted(host):
                hops = [h.strip() for h in forwarded.split(",") if h.strip()]
                client = next((h for h in reversed(hops) if not self._trusted(h)), hops[0] if hops else host)
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == name]
    return ",".join(values) if values else None


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                names = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [h for h in SECURITY_HEADERS if h[0] not in names]
            await send(msg)

        await self.app(scope, receive, with_headers)


def make_limiter(settings: Settings) -> RateLimiter:
    return RedisRateLimiter(settings.redis_url, settings.redis_prefix) if settings.redis_url else MemoryRateLimiter()


def install(app: Any, settings: Settings) -> None:
    """Order matters: the outermost middleware is added last."""
    limiter = make_limiter(settings)
    app.state.limiter = limiter
    app.add_middleware(RateLimitMiddleware, limiter=limiter, per_ip=settings.rate_limit_ip,
                       per_session=settings.rate_limit_session, window=settings.rate_limit_window)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout=settings.request_timeout,
                       admin_bytes=settings.max_admin_body_bytes, image_bytes=settings.max_image_bytes)
    app.add_middleware(ClientAddressMiddleware, trusted=settings.trusted_proxies)
    app.add_middleware(SecurityHeadersMiddleware)
    origins = settings.origins()
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["content-type", "authorization"], max_age=600)
