"""Fake peers for the integrations' end-to-end tests: an HTTP server whose handler checks each request.

The handler gets every request as a `Seen` and answers (status, JSON) or raises AssertionError: a
request of the wrong path, header or body field is then answered 400 and kept in `wrong`, which the
test asserts is empty, so that a wrong request fails the test even though kefu only logs the 400.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """One request as the peer received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)


Handler = Callable[[Seen], tuple[int, Any]]


class Peer:
    """A threaded HTTP server on a free loopback port, calling `handler` for every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.accepted: list[Seen] = []  # requests the handler answered without an AssertionError
        self.wrong: list[str] = []  # what was wrong with the others
        self._lock = threading.Lock()
        peer = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                url = urlsplit(self.path)
                seen = Seen(self.command, url.path, parse_qs(url.query, keep_blank_values=True),
                            {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(size))
                try:
                    status, body = peer.handler(seen)
                except AssertionError as exc:
                    with peer._lock:
                        peer.wrong.append(f"{seen.method} {seen.path}: {exc}")
                    status, body = 400, {"error": "wrong request"}
                else:
                    with peer._lock:
                        peer.accepted.append(seen)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, done: Callable[[list[Seen]], bool], timeout: float = 60) -> list[Seen]:
        """Bounded polling until `done(accepted)` holds (or a wrong request came); the requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                accepted, wrong = list(self.accepted), list(self.wrong)
            assert not wrong, wrong
            if done(accepted):
                return accepted
            time.sleep(0.05)
        raise AssertionError(f"the peer did not get what was expected; it got {len(self.accepted)} requests")


@contextmanager
def peer(handler: Handler) -> Iterator[Peer]:
    p = Peer(handler)
    try:
        yield p
    finally:
        p.close()


def check(condition: bool, what: str) -> None:
    """An assertion that survives `python -O`, with what was wrong."""
    if not condition:
        raise AssertionError(what)
