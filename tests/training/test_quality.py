"""Quality on held-out shopper messages that are not in data/faq (never trained on)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.dialogue import knowledge
from bot.language.normalize import normalize
from tests.conftest import DATA, HELDOUT, HELDOUT_SETS
from training.evaluate import evaluate, read_jsonl


def _key(text: str) -> str:
    """What the model sees, without punctuation: 在吗？ and 在嗎 are the same message."""
    return re.sub(r"[\W_]+", "", normalize(text))


def test_heldout_is_not_in_the_training_data() -> None:
    texts, _ = knowledge.load(DATA).training_pairs()
    seen = {_key(t) for t in texts}
    assert len(HELDOUT_SETS) >= 2
    assert not [r["text"] for r in read_jsonl(HELDOUT) if _key(r["text"]) in seen]


def test_heldout_sets_do_not_share_messages() -> None:
    keys = [_key(r["text"]) for r in read_jsonl(HELDOUT)]
    assert len(keys) == sum(len(read_jsonl(p)) for p in HELDOUT_SETS)
    assert len(set(keys)) == len(keys)


# Floors at the understanding issue's targets (route 0.96, entry 0.92, human recall 0.98); FAQ
# questions handed off (target 3%) has a floor of 4%: one message is 0.5% of a set.
@pytest.mark.parametrize("path", HELDOUT_SETS, ids=lambda p: p.stem)
def test_heldout_routing_quality(bot, path: Path) -> None:  # type: ignore[no-untyped-def]
    m = evaluate(bot, read_jsonl(path))
    assert m["n"] >= 300
    assert m["route_accuracy"] >= 0.96, m
    assert m["entry_accuracy"] >= 0.92, m
    assert m["human_recall"] >= 0.98, m
    assert m["faq_handoff_rate"] <= 0.04, m
    assert m["wrong_answer_rate"] <= 0.02, m
