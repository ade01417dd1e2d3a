"""Fixed-window rate limits, in memory (one process) or in Redis (shared by every process)."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window: int) -> int:
        """Count one request; return 0 if allowed, else the seconds until the window resets."""

    def once(self, key: str, ttl: int) -> bool:
        """True the first time `key` is seen within `ttl` seconds (a ticket's single use), else False."""


class MemoryRateLimiter:
    """Per-process counters; enough for one server process."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self._pruned = -1  # the window last pruned in
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window: int) -> int:
        now = int(time.time())
        slot = now // window
        with self._lock:
            if len(self._counts) > 100_000 and self._pruned != slot:  # forget old windows, once per window
                self._counts = {k: v for k, v in self._counts.items() if v[0] == slot}
                self._pruned = slot
            seen_slot, count = self._counts.get(key, (slot, 0))
            count = count + 1 if seen_slot == slot else 1
            self._counts[key] = (slot, count)
        return 0 if count <= limit else (slot + 1) * window - now

    def once(self, key: str, ttl: int) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            if self._seen.get(key, 0.0) > now:
                return False
            self._seen[key] = now + ttl
            return True


class RedisRateLimiter:
    """Counters in Redis, so limits hold across processes and hosts."""

    def __init__(self, url: str, prefix: str = "kefu") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._prefix = prefix

    def hit(self, key: str, limit: int, window: int) -> int:
        import redis

        now = int(time.time())
        slot = now // window
        name = f"{self._prefix}:rl:{key}:{slot}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, window + 1)
            count = int(pipe.execute()[0])
        except redis.RedisError:
            return 0  # fail open: a Redis blip must not stop shoppers from chatting
        return 0 if count <= limit else (slot + 1) * window - now

    def once(self, key: str, ttl: int) -> bool:
        import redis

        try:
            return bool(self._redis.set(f"{self._prefix}:once:{key}", 1, nx=True, ex=ttl))
        except redis.RedisError:
            return True  # fail open, as the limits do: a Redis blip must not lock agents out
