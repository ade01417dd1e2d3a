"""Quality on held-out shopper messages that are not in data/faq (never trained on)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.dialogue import knowledge
from bot.language.normalize import normalize
from tests.conftest import DATA, HELDOUT, HELDOUT_SETS
from training.dialogues import evaluate_dialogues
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


# Conversations (data/dialogues, written apart from data/faq, never trained on): dev, dev2, dev3, dev4 and
# dev5 (written later, across many goods; dev5 from a brief naming kinds the others' errors showed) were
# used for error analysis, test, test2, test3 and test4 (written last, across fifty and sixty kinds of goods;
# test4 on 2026-11-29 by a helper who read only the catalogue) only measured. Floors a little under what the
# default model reaches (the targets are higher: route 0.97, entry 0.95, follow-ups 0.93, FAQ handed
# off 2%, human recall 0.98, chats 0.92; the README's quality section has the figures).
DIALOGUE_FLOORS = {
    "dev": {"route_accuracy": 0.97, "entry_accuracy": 0.94, "follow_up_accuracy": 0.83, "human_recall": 0.93,
            "chat_accuracy": 0.86, "faq_handoff_rate": 0.03},
    "dev2": {"route_accuracy": 0.97, "entry_accuracy": 0.94, "follow_up_accuracy": 0.85, "human_recall": 0.95,
             "chat_accuracy": 0.88, "faq_handoff_rate": 0.03},
    "dev3": {"route_accuracy": 0.95, "entry_accuracy": 0.90, "follow_up_accuracy": 0.77, "human_recall": 0.93,
             "chat_accuracy": 0.75, "faq_handoff_rate": 0.05},
    "dev4": {"route_accuracy": 0.94, "entry_accuracy": 0.92, "follow_up_accuracy": 0.93, "human_recall": 0.88,
             "chat_accuracy": 0.80, "faq_handoff_rate": 0.03},
    "dev5": {"route_accuracy": 0.93, "entry_accuracy": 0.88, "follow_up_accuracy": 0.87, "human_recall": 0.80,
             "chat_accuracy": 0.68, "faq_handoff_rate": 0.03},
    "test2": {"route_accuracy": 0.95, "entry_accuracy": 0.89, "follow_up_accuracy": 0.85, "human_recall": 0.88,
              "chat_accuracy": 0.72, "faq_handoff_rate": 0.02},
    "test": {"route_accuracy": 0.97, "entry_accuracy": 0.93, "follow_up_accuracy": 0.85, "human_recall": 0.93,
             "chat_accuracy": 0.83, "faq_handoff_rate": 0.02},
    "test3": {"route_accuracy": 0.92, "entry_accuracy": 0.88, "follow_up_accuracy": 0.83, "human_recall": 0.82,
              "chat_accuracy": 0.70, "faq_handoff_rate": 0.04},
    "test4": {"route_accuracy": 0.93, "entry_accuracy": 0.90, "follow_up_accuracy": 0.92, "human_recall": 0.75,
              "chat_accuracy": 0.77, "faq_handoff_rate": 0.02},
}


@pytest.mark.parametrize("name", sorted(DIALOGUE_FLOORS))
def test_dialogue_quality(bot, name: str) -> None:  # type: ignore[no-untyped-def]
    m = evaluate_dialogues(bot, read_jsonl(DATA.parent / "dialogues" / f"{name}.jsonl"))
    floors = DIALOGUE_FLOORS[name]
    assert m["chats"] >= 60 and m["follow_ups"] >= 30
    for key, floor in floors.items():
        if key == "faq_handoff_rate":
            assert m[key] <= floor, (key, m[key])
        else:
            assert m[key] >= floor, (key, m[key])
