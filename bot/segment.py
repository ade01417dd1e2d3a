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

_DEFAULT_USERDICT = Path(__file__).resolve().parent.parent / "data" / "faq" / "userdict.txt"
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_userdict: Path | None = None

jieba.setLogLevel(logging.WARNING)


def configure(userdict: Path | None) -> None:
    """Choose the user dictionary; takes effect before the first `cut`."""
    global _userdict, _tokenizer
    with _lock:
        if userdict != _userdict:
            _userdict, _tokenizer = userdict, None


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


def warm() -> None:
    """Load the dictionaries now, not on the first shopper's message."""
    cut("预热一下分词器")


def cut(text: str) -> list[str]:
    """Segment already-normalised text into words, dropping whitespace tokens."""
    return [w for w in _get().lcut(text, HMM=True) if w.strip()]
