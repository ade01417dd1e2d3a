"""Smoke test of the soak run (bench/soak.py): a tiny run passes its own checks. The soak itself is `make soak`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.soak import main, scripted_texts
from bot.dialogue.rules import match
from bot.language.normalize import normalize


def test_scripted_texts_split_faq_from_handoff_triggers() -> None:
    faq, greetings, triggers = scripted_texts()
    assert len(faq) > 100 and greetings
    assert all(match(normalize(t)) for t in triggers)
    assert not any(match(normalize(t)) for t in faq)


@pytest.mark.slow
def test_small_soak_stores_every_acknowledged_message(tmp_path: Path) -> None:
    rc = main(["--messages", "300", "--sessions", "20", "--max-seconds", "60", "--handoff-rate", "0.2",
               "--embedder", "none", "--out", str(tmp_path)])
    res = json.loads((tmp_path / "soak.json").read_text(encoding="utf-8"))
    assert rc == 0, res["checks"]
    assert res["client"]["sent"] == 300 and res["target_reached"]
    assert res["stored"]["messages_by_role"]["shopper"] == res["client"]["acknowledged"] == 300
    assert res["client"]["handoffs_opened"] > 0
    assert res["client"]["handoffs_resolved"] == res["client"]["handoffs_opened"]
    assert (tmp_path / "soak.md").read_text(encoding="utf-8").count("ok:") == len(res["checks"])
