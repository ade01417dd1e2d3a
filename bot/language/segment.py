"""Segmentation with jieba and the shop's user dictionary.

`cut` is a plain module-level function so scikit-learn pipelines pickle it by reference.
"""

from __future__ import annotations

import logging
import marshal
import os
import tempfile
import threading
from pathlib import Path

import jieba

USERDICT_FILE = "userdict.txt"  # in a data folder (and, copied, in a model folder)
# Until configured (by training or the loader): the repository's own data folder.
_DEFAULT_USERDICT = Path(__file__).resolve().parents[2] / "data" / "faq" / USERDICT_FILE
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_userdict: Path | None = None

WARM_UP_SAMPLE = "预热一下分词器"

jieba.setLogLevel(logging.WARNING)


def configure(userdict: Path | None) -> None:
    """Choose the user dictionary (a path that does not exist: none); `cut` uses it from now on.
    The same words from another file (a model's copy of the data folder's) keep the tokenizer."""
    global _userdict, _tokenizer
    with _lock:
        if _content(userdict) != _content(_userdict):
            _tokenizer = None
        _userdict = userdict


def _content(path: Path | None) -> bytes | None:
    path = path or _DEFAULT_USERDICT
    return path.read_bytes() if path.is_file() else None


def _get() -> jieba.Tokenizer:
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                tok = jieba.Tokenizer()
                _read_cache(tok)
                tok.initialize()  # builds (and caches) the prefix dictionary unless _read_cache did
                path = _userdict or _DEFAULT_USERDICT
                if path.is_file():
                    # A file object, not a path: jieba leaves a path's file open.
                    with open(path, "rb") as fh:
                        tok.load_userdict(fh)
                _tokenizer = tok
    return _tokenizer


def _read_cache(tok: jieba.Tokenizer) -> None:
    """jieba's own cache of its default dictionary (the file and rule jieba.Tokenizer.initialize
    uses), read in one piece: jieba's marshal.load(file) reads object by object, two to three
    times slower, and was the largest part of the server's start-up."""
    if tok.dictionary != jieba.DEFAULT_DICT or tok.cache_file:
        return
    path = os.path.join(tok.tmp_dir or tempfile.gettempdir(), "jieba.cache")
    try:
        with open(path, "rb") as fh:
            freq, total = marshal.loads(fh.read())
    except (OSError, EOFError, ValueError, TypeError):
        return  # no cache yet, or a broken one: initialize() rebuilds it
    if isinstance(freq, dict) and isinstance(total, int):
        tok.FREQ, tok.total, tok.initialized = freq, total, True


def userdict() -> Path:
    """The user dictionary `cut` segments with."""
    return _userdict or _DEFAULT_USERDICT


def warm() -> None:
    """Load the dictionaries now, not on the first shopper's message."""
    cut(WARM_UP_SAMPLE)


def cut(text: str) -> list[str]:
    """Segment already-normalised text into words, dropping whitespace tokens."""
    return [w for w in _get().lcut(text, HMM=True) if w.strip()]
