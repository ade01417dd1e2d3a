"""How uvicorn runs kefu: `kefu serve` and the tests start it with these options.

- No proxy headers from uvicorn itself: it would believe X-Forwarded-For from 127.0.0.1, so any
  local process could pick its own address; kefu reads the header only from the proxies listed
  in KEFU_TRUSTED_PROXIES (api.middleware.ClientAddressMiddleware).
- Deadlines for a request's headers and body: uvicorn waits for them without one, so a client that
  sends half a request line, or nothing, or a body byte by byte, holds a connection for ever.
  api.middleware.BodyLimitMiddleware answers a late body with a 408 first.
- Several workers count their metrics in files of one folder, which a scrape of any of them adds
  up (prometheus_client's multiprocess mode, api/metrics.py): `share_metrics`.
- Each server process keeps its threads on a core of its own (`pin_to_one_core`, KEFU_PIN_CORE).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import socket
import tempfile
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bot.config import get_settings

PROTOCOL = "api.server:RequestDeadlineProtocol"
OPTIONS: dict[str, Any] = {"http": PROTOCOL, "proxy_headers": False}


# prometheus_client reads it when it is first imported, in each worker.
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics(workers: int) -> None:
    """Before uvicorn starts `workers` processes: a fresh folder for their metrics (files of an earlier
    run would add up with this one's), removed at exit. A folder set by the operator is kept."""
    if workers > 1 and not os.environ.get(METRICS_DIR):
        folder = tempfile.mkdtemp(prefix="kefu-metrics-")
        os.environ[METRICS_DIR] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)


CLAIM = "kefu-core"  # the abstract socket names by which kefu's processes hold their cores: kefu-core-0, ...
_CLAIMS: list[socket.socket] = []  # this process's, for its lifetime


def pin_to_one_core() -> int | None:
    """Hold this process's threads to one core no other kefu process holds; that core, or None when
    left as it was.

    A chat turn runs on a thread of its own while the event loop goes on reading sockets, and the two
    hand Python's GIL to each other at every release. Spread over two cores, each hand-off wakes the
    other core and waits for it; on one core it is a plain switch. Measured on a 2-core machine
    (README, Performance): the server's CPU a chat 0.8 of what it was, with the embedder's batching of
    concurrent turns kept. The core the process runs on is taken if free, else the first free one;
    uvicorn's workers, or servers started side by side, each get their own, and a process finding every
    core held (more processes than cores), or a machine or container of one core, is left alone. Threads
    started later (the turn threads) inherit it; a training run started from the console widens it again
    (training/job.py)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        return None
    with open("/proc/self/stat", encoding="ascii") as f:  # field 39, "processor": the core it last ran on
        here = int(f.read().rpartition(")")[2].split()[36])
    core = _claim(sorted(allowed, key=lambda c: (c != here, c)))
    if core is None:
        return None
    for task in os.listdir("/proc/self/task"):  # every thread, not just the calling one
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(task), {core})
    return core


def _claim(cores: list[int]) -> int | None:
    """The first of `cores` no other process holds: an abstract Unix socket bound for each, which the kernel
    frees when the process ends (a worker uvicorn restarts finds its core free again). No file is left."""
    for core in cores:
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind(f"\0{CLAIM}-{core}")
        except OSError:
            claim.close()
            continue
        _CLAIMS.append(claim)
        return core
    return None


def cli_args() -> list[str]:
    """OPTIONS as `uvicorn` command-line flags."""
    return ["--http", PROTOCOL, "--no-proxy-headers"]


class RequestDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines on the request itself: its headers must arrive whole
    within KEFU_REQUEST_TIMEOUT seconds of the connection (or, on a kept-alive connection, of the
    request's first byte), and its body within that again (plus a second, so that the app's own 408
    goes out first). A body the app never reads (a GET with Content-Length, a refused POST) falls
    under the same deadline: trickling it a byte at a time holds no connection."""

    _deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

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
        self._arm(get_settings().request_timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request (a new one is armed already)
            self._arm(get_settings().request_timeout)

    def on_headers_complete(self) -> None:
        self._arm(get_settings().request_timeout + 1)  # now the body's deadline
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
