"""What every sentence embedder shares: a vector cache by text, and concurrent callers batched.

`CachedEmbedder` is the base of bot.language.embedders' and bot.language.static's embedders.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

_CACHE_SIZE = 50_000


class _LRU:
    """A small thread-safe text -> vector cache (repeat messages such as 在吗 are common)."""

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self._size:
                self._data.popitem(last=False)


_CACHES: dict[str, _LRU] = {}
_CACHES_LOCK = threading.Lock()


def clear_caches() -> None:
    """Forget every cached vector (benchmarks measure what a new message costs)."""
    with _CACHES_LOCK:
        _CACHES.clear()


def _cache_for(key: str) -> _LRU:
    """One vector cache per embedder, shared by its instances (cross-validation folds reuse it)."""
    with _CACHES_LOCK:
        return _CACHES.setdefault(key, _LRU(_CACHE_SIZE))


class _Slot:
    """One caller's texts waiting in a _Coalescer."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.ready = threading.Event()


class _Coalescer:
    """Concurrent encode calls share one batch (dynamic batching).

    A sentence encoder spends most of a lone sentence's time on per-call work; eight sentences in
    one call cost about twice one. When a thread asks while another is encoding, its texts wait;
    the encoding thread then takes everything waiting as one batch, and hands the lead to the first
    thread still waiting, so no caller waits for more than the batch in progress and its own. A lone
    caller (one request at a time, or training) encodes at once, exactly as without this.
    """

    def __init__(self, encode: Any, max_texts: int = 64) -> None:
        self._encode = encode
        self._max = max_texts
        self._lock = threading.Lock()
        self._waiting: list[_Slot] = []
        self._busy = False  # invariant: texts are waiting only while some thread leads

    def __call__(self, texts: list[str]) -> np.ndarray:
        slot = _Slot(texts)
        with self._lock:
            self._waiting.append(slot)
            lead, self._busy = not self._busy, True
        if not lead:
            slot.ready.wait()
        if slot.lead or lead:  # this slot is first in line: encode a batch that includes it
            self._encode_batch()
            with self._lock:
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].ready.set()
                else:
                    self._busy = False
        if slot.error is not None:
            raise slot.error
        assert slot.vectors is not None
        return slot.vectors

    def _encode_batch(self) -> None:
        with self._lock:
            batch = [self._waiting.pop(0)]
            n = len(batch[0].texts)
            while self._waiting and n + len(self._waiting[0].texts) <= self._max:
                batch.append(self._waiting.pop(0))
                n += len(batch[-1].texts)
        try:
            vectors = np.asarray(self._encode([t for s in batch for t in s.texts]))
        except BaseException as exc:  # every caller in the batch sees the error
            for s in batch:
                s.error = exc
        else:
            start = 0
            for s in batch:
                s.vectors = vectors[start:start + len(s.texts)]
                start += len(s.texts)
        for s in batch:
            s.lead = False
            s.ready.set()


class CachedEmbedder:
    """Base: encodes texts with a lazily built backend, caching vectors by text; concurrent
    callers' texts are encoded together (_Coalescer)."""

    name = "base"
    weight: float

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def cache_key(self) -> str:
        return self.name

    def warm(self) -> None:
        """Load what the first encode would load (a server calls this at start-up)."""

    def transform(self, X: list[str]) -> np.ndarray:
        cache = _cache_for(self.cache_key())
        vectors = {t: cache.get(t) for t in dict.fromkeys(X)}  # held here: the cache may evict meanwhile
        missing = [t for t, v in vectors.items() if v is None]
        if missing:
            if "_coalescer" not in self.__dict__:
                with _CACHES_LOCK:
                    self.__dict__.setdefault("_coalescer", _Coalescer(self._encode))
            for text, vec in zip(missing, self.__dict__["_coalescer"](missing), strict=True):
                vectors[text] = np.asarray(vec, dtype=np.float32)
                cache.put(text, vectors[text])  # type: ignore[arg-type]
        out = np.vstack([vectors[t] for t in X]) if X else np.zeros((0, 1), np.float32)  # type: ignore[misc]
        return out * np.float32(self.weight)

    def __getstate__(self) -> dict[str, Any]:
        # Never pickle the backend or the cache: weights come from the installed package.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
