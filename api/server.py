"""How uvicorn runs kefu: `kefu serve` and the tests start it with these options.

- No proxy headers from uvicorn itself: it would believe X-Forwarded-For from 127.0.0.1, so any
  local process could pick its own address; kefu reads the header only from the proxies listed
  in KEFU_TRUSTED_PROXIES (api.middleware.ClientAddressMiddleware).
- A deadline for a request's headers: uvicorn waits for them without one, so a client that sends
  half a request line, or nothing, holds a connection for ever. The body has its own deadline in
  api.middleware.BodyLimitMiddleware.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.config import get_settings

PROTOCOL = "api.server:HeaderDeadlineProtocol"
OPTIONS: dict[str, Any] = {"http": PROTOCOL, "proxy_headers": False}


def cli_args() -> list[str]:
    """OPTIONS as `uvicorn` command-line flags."""
    return ["--http", PROTOCOL, "--no-proxy-headers"]


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers do not arrive whole
    within KEFU_REQUEST_TIMEOUT seconds of the connection (or of the previous response)."""

    _deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(get_settings().request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
