"""The serving fast path computes what the fitted pipeline computes."""

from __future__ import annotations

import numpy as np

TEXTS = [
    "什么时候发货", "寄到新疆多少运费？？", "衣服破了個洞！！😡", "165 100斤穿什么码", "", "🙏🙏", "???",
    "zfb可以吗 sf能发吗", "我要投诉你们" * 40, "ｈｅｌｌｏ　在吗", "这件是什么面料的，能机洗吗，会不会缩水",
]


def test_fast_path_matches_the_pipeline(bot) -> None:  # type: ignore[no-untyped-def]
    model = bot.model
    assert model._fast is not None  # the default model takes the fast path
    fast = model.probabilities(TEXTS)
    slow = model.pipeline.predict_proba(TEXTS)
    assert fast.shape == slow.shape
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    # One message at a time, as serving does, gives the same numbers as the batch.
    np.testing.assert_allclose(np.vstack([model.probabilities([t]) for t in TEXTS]), slow, rtol=0, atol=1e-12)
