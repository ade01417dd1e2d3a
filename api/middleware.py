"""Protections for an endpoint open to the internet: body size, rate limits, headers, CORS."""

from __future__ import annotations

import json
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import Settings
from bot.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                 b"connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"),
]


async def _json(send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for bodies over the limit, whether or not Content-Length says so."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _json(send, 413, "too_large", f"request body over {self.max_bytes} bytes")
        seen, too_large, started = 0, False, False

        async def limited() -> Message:
            nonlocal seen, too_large
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                too_large = True
                raise _TooLarge
            return msg

        async def guarded(msg: Message) -> None:
            # The framework may catch _TooLarge and answer 400 itself: drop that answer.
            nonlocal started
            if too_large and not started:
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited, guarded)
        except _TooLarge:
            pass
        if too_large and not started:
            await _json(send, 413, "too_large", f"request body over {self.max_bytes} bytes")


class _TooLarge(Exception):
    pass


class RateLimitMiddleware:
    """Per-IP and per-session limits on the shopper's endpoints (429 with Retry-After)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, per_ip: int, per_session: int, window: int) -> None:
        self.app, self.limiter = app, limiter
        self.per_ip, self.per_session, self.window = per_ip, per_session, window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/chat"):
            return await self.app(scope, receive, send)
        ip = _client_ip(scope)
        wait = self.limiter.hit(f"ip:{ip}", self.per_ip, self.window)
        session = path.split("/")[3] if path.count("/") >= 3 else ""
        if not wait and session:
            wait = self.limiter.hit(f"s:{session}", self.per_session, self.window)
        if wait:
            return await _json(send, 429, "rate_limited", "亲，您发消息太快啦，请稍等片刻再试～",
                               [(b"retry-after", str(max(wait, 1)).encode())])
        await self.app(scope, receive, send)


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


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
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    origins = settings.origins()
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["content-type", "authorization"], max_age=600)
