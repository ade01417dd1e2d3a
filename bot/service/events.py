"""In-process publish/subscribe for server-sent events.

Publishers may be worker threads (sync routes); subscribers are asyncio consumers. Each
subscriber has a bounded queue; a slow one loses its oldest events rather than blocking chat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

QUEUE_SIZE = 1000
log = logging.getLogger(__name__)


class EventBus:
    """Channels such as 'agents' or 'session:<id>' fan out to every subscriber."""

    def __init__(self) -> None:
        self._subs: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]]] = {}
        self._lock = threading.Lock()

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        with self._lock:
            targets = list(self._subs.get(channel, ()))
        for loop, queue in targets:
            try:
                loop.call_soon_threadsafe(_put, queue, event)
            except RuntimeError:  # loop closed: the subscriber is gone
                pass

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subs.setdefault(channel, []).append(entry)
        try:
            yield queue
        finally:
            with self._lock:
                self._subs[channel].remove(entry)

    def subscribers(self, channel: str) -> int:
        with self._lock:
            return len(self._subs.get(channel, ()))

    def close(self) -> None:
        pass


def _put(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(event)


class RedisEventBus(EventBus):
    """Events through Redis pub/sub, so every server process sees every event.

    `publish` only sends to Redis; one listener thread per process receives everything
    (its own events included) and fans it out to local subscribers, so nothing arrives twice.
    """

    def __init__(self, url: str, prefix: str = "kefu") -> None:
        import redis

        super().__init__()
        self.PREFIX = f"{prefix}:events:"
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="kefu-events", daemon=True)
        self._thread.start()

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        import redis

        try:
            self._redis.publish(self.PREFIX + channel, json.dumps(event, ensure_ascii=False))
        except redis.RedisError as exc:  # degrade to this process rather than lose the event
            log.warning("redis publish failed (%s); delivering locally only", exc)
            super().publish(channel, event)

    def _listen(self) -> None:
        import redis

        while not self._stop.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(self.PREFIX + "*")
                while not self._stop.is_set():
                    msg = pubsub.get_message(timeout=1.0)
                    if msg and msg["type"] == "pmessage":
                        channel = msg["channel"].decode()[len(self.PREFIX):]
                        super().publish(channel, json.loads(msg["data"]))
                pubsub.close()
            except redis.RedisError as exc:
                log.warning("redis event listener: %s; reconnecting", exc)
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(3)
