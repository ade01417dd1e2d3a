"""Conversations: how a chat is judged and played, the bot reading follow-ups with the turn before,
and the dialogue sets kept out of training."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.dialogue import knowledge
from bot.dialogue.results import Reply
from bot.language.normalize import normalize
from bot.service.conversations import Conversations
from bot.service.store import Store
from tests.conftest import DATA, ROOT
from training.dialogues import evaluate_dialogues, is_dialogues, judge
from training.evaluate import read_jsonl

DIALOGUES = ROOT / "data" / "dialogues"
DIALOGUE_SETS = sorted(DIALOGUES.glob("*.jsonl"))


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", normalize(text))


def reply(action: str, intent: str | None, route: str = "faq", suggestions: list[str] | None = None,
          intents: list[str] | None = None) -> Reply:
    return Reply(route, action, intent, 0.9, "…", suggestions=[{"intent": s, "title": s} for s in suggestions or []],
                 intents=intents or ([intent] if intent and action == "answer" else []))


def test_a_turn_is_right_when_answered_from_its_entry_or_offered_first() -> None:
    faq = {"text": "包邮吗", "route": "faq", "faq": ["shipping.fee"]}
    assert judge(faq, reply("answer", "shipping.fee"))
    assert judge(faq, reply("answer", "shipping.when", intents=["shipping.when", "shipping.fee"]))  # two questions
    assert judge(faq, reply("suggest", "shipping.fee", suggestions=["shipping.fee", "shipping.eta"]))
    assert not judge(faq, reply("suggest", "shipping.eta", suggestions=["shipping.eta", "shipping.fee"]))
    assert not judge(faq, reply("clarify", "shipping.fee"))  # a request to rephrase is no answer
    assert not judge(faq, reply("handoff", "human.other", route="human"))
    person = {"text": "转人工", "route": "human", "faq": ["human.request"]}
    assert judge(person, reply("handoff", "human.request", route="human"))
    assert not judge(person, reply("suggest", "size.fit", suggestions=["size.fit"]))


def test_chats_and_single_messages_are_told_apart() -> None:
    assert is_dialogues([{"id": "a", "turns": [{"text": "在吗"}]}])
    assert not is_dialogues([{"text": "在吗"}])
    with pytest.raises(ValueError, match="mixes"):
        is_dialogues([{"text": "在吗"}, {"turns": [{"text": "在吗"}]}])


CHATS: list[dict[str, Any]] = [
    {"id": "returns", "turns": [
        {"text": "退货有什么要求", "route": "faq", "faq": ["returns.policy"]},
        {"text": "来回邮费算谁的呀", "route": "faq", "faq": ["returns.fee"], "follows": True},
        {"text": "什么时候发货呀", "route": "faq", "faq": ["shipping.when"]},  # a new topic stays new
    ]},
    {"id": "invoice", "turns": [
        {"text": "能开增值税专票吗", "route": "faq", "faq": ["payment.invoice"]},
        {"text": "大概多久能开出来", "route": "faq", "faq": ["payment.invoice"], "follows": True},
    ]},
    {"id": "cod", "turns": [
        {"text": "能到付吗", "route": "faq", "faq": ["payment.cod"]},
        {"text": "那得多付多少钱", "route": "faq", "faq": ["payment.cod"], "follows": True},
    ]},
    {"id": "cancel", "turns": [
        {"text": "下单下错了还没发货 怎么取消", "route": "faq", "faq": ["returns.cancel"]},
        {"text": "不用转人工 就问钱原路退吗", "route": "faq", "faq": ["returns.refund"]},
    ]},
    {"id": "person", "turns": [
        {"text": "你好", "route": "faq", "faq": ["smalltalk.greeting"]},
        {"text": "我要投诉你们 东西是坏的", "route": "human", "faq": ["human.complaint"]},
    ]},
]


def test_follow_ups_are_read_with_the_turn_before(bot) -> None:  # type: ignore[no-untyped-def]
    """Short follow-ups of several kinds (written for this test) mean the entry of the chat they
    continue; a new question keeps its own meaning; a taken-back trigger is no handoff."""
    m = evaluate_dialogues(bot, CHATS)
    assert m["errors"] == [] and m["chat_accuracy"] == 1.0, m["errors"]
    alone = [bot.predict(t["text"]) for chat in CHATS for t in chat["turns"] if t.get("follows")]
    assert [r.intent for r in alone] != ["returns.fee", "payment.invoice", "payment.cod"]  # the context mattered


def test_a_wrong_handoff_is_wrong_and_the_bot_still_answers_while_the_shopper_waits(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chats = [{"id": "x", "turns": [{"text": "转人工", "route": "faq", "faq": ["shipping.when"]},
                                    {"text": "什么时候发货", "route": "faq", "faq": ["shipping.when"]},
                                    {"text": "在吗", "route": "faq", "faq": ["smalltalk.greeting"]}]}]
    m = evaluate_dialogues(bot, chats)
    assert (m["faq_handoff_rate"], m["chat_accuracy"]) == (2 / 3, 0.0)  # 转人工 and 在吗 went to the person
    # Nobody has claimed the chat: the clear question is answered, a greeting waits for the person
    # (acknowledged: the first message of a burst while waiting, bot.service.waiting).
    assert [e["action"] for e in m["errors"]] == ["handoff", "ack"]
    assert [e["text"] for e in m["errors"]] == ["转人工", "在吗"]
    # As in a real chat through the service; once a person has it, the bot says nothing more.
    store = Store(f"sqlite:///{tmp_path / 'k.db'}")
    store.create_schema()
    conv = Conversations(lambda: bot, store)
    first = conv.chat(None, "转人工")
    assert conv.chat(first.session_id, "什么时候发货").intent == "shipping.when"
    conv.claim(first.handoff["id"], "alice")  # type: ignore[index]
    assert conv.chat(first.session_id, "什么时候发货").reply is None


# dev2, dev3, dev4, dev5, test2, test3 and test4 were written after the knowledge base, by people who never saw
# it, and some of their turns are common short questions it already had (什么时候发货, 发什么快递, 退货运费谁出): 19,
# 8, 6, 18, 11, 9 and 7 turns, counted when they were added. More would mean a chat was copied into the training data.
KNOWN_COINCIDENCES = {"dev2": 19, "dev3": 8, "dev4": 6, "dev5": 18, "test2": 11, "test3": 9, "test4": 7}


@pytest.mark.parametrize("path", DIALOGUE_SETS, ids=lambda p: p.stem)
def test_dialogue_sets_are_not_in_the_training_data(path: Path) -> None:
    kb = knowledge.load(DATA)
    seen = {_key(t) for e in kb.entries.values() for t in e.examples}
    seen |= {_key(t) for e in kb.entries.values() for f in e.follow_ups for t in f.examples}
    chats = read_jsonl(path)
    assert len(chats) >= 60 and is_dialogues(chats)
    shared = [t["text"] for c in chats for t in c["turns"] if _key(t["text"]) in seen and len(_key(t["text"])) > 4]
    assert len(shared) <= KNOWN_COINCIDENCES.get(path.stem, 0), shared


def test_cli_eval_plays_a_dialogue_file(models_dir: Path, tmp_path: Path) -> None:
    chats = tmp_path / "chats.jsonl"
    chats.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CHATS[:2]), encoding="utf-8")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, "KEFU_MODELS_DIR": str(models_dir)}
    out = subprocess.run([sys.executable, "-m", "training", "eval", str(chats), "--json"], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=300, check=True)
    m = json.loads(out.stdout)
    assert (m["chats"], m["turns"], m["follow_ups"]) == (2, 5, 2) and m["chat_accuracy"] == 1.0
