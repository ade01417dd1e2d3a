"""Quality on held-out shopper messages that are not in data/faq (never trained on)."""

from __future__ import annotations

import re

from bot import knowledge
from bot.normalize import normalize
from tests.conftest import DATA, HELDOUT
from training.evaluate import evaluate, read_jsonl


def _key(text: str) -> str:
    """What the model sees, without punctuation: 在吗？ and 在嗎 are the same message."""
    return re.sub(r"[\W_]+", "", normalize(text))


def test_heldout_is_not_in_the_training_data() -> None:
    texts, _ = knowledge.load(DATA).training_pairs()
    seen = {_key(t) for t in texts}
    assert not [r["text"] for r in read_jsonl(HELDOUT) if _key(r["text"]) in seen]


def test_heldout_routing_quality(bot) -> None:  # type: ignore[no-untyped-def]
    m = evaluate(bot, read_jsonl(HELDOUT))
    assert m["n"] >= 300
    assert m["route_accuracy"] >= 0.94, m
    assert m["human_recall"] >= 0.97, m
    assert m["wrong_answer_rate"] <= 0.02, m
