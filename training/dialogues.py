"""Evaluation of whole conversations: each chat played turn by turn through the conversation
service (bot, store, handoffs), as a shopper would through the widget.

A chat is a JSON line `{"id", "goods"?, "turns": [{"text", "route", "faq": [ids], "follows": bool}]}`:
the shopper's messages in order, each labelled with the entry a good human agent would understand
in context. A turn is right when the bot answers it from one of its entries, or offers one of them
as the first quick reply; a turn that needs a person is right when it goes to one. A request to
rephrase is not an answer. After a handoff the bot answers only what it is sure of while the shopper
waits (nobody claims a chat here), so a wrong handoff costs its turn and the unsure turns after it.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from bot.dialogue.engine import Bot
from bot.dialogue.results import Reply
from bot.service.conversations import Conversations
from bot.service.store import Store

# Inside the shop's service hours (14:00 in Asia/Shanghai), so that handoffs read as they usually do.
PLAYED_AT = dt.datetime(2026, 11, 11, 6, 0, tzinfo=dt.UTC)


def is_dialogues(records: list[dict[str, Any]]) -> bool:
    """Whether records are chats (with turns) rather than single messages; ValueError if mixed."""
    kinds = {isinstance(r.get("turns"), list) for r in records}
    if len(kinds) > 1:
        raise ValueError("a file mixes chats (with 'turns') and single messages")
    return kinds == {True}


def judge(turn: dict[str, Any], out: Reply) -> bool:
    """Whether the bot handled one turn right (see the module's docstring)."""
    gold = [str(x) for x in turn.get("faq") or []]
    if turn.get("route") == "human":
        return out.route == "human"
    if out.action == "answer":
        return bool(set(out.intents or [str(out.intent)]) & set(gold))
    if out.action == "suggest":
        return bool(out.suggestions) and out.suggestions[0]["intent"] in gold
    return False


def play(bot: Bot, chats: list[dict[str, Any]]) -> list[list[tuple[dict[str, Any], Reply]]]:
    """Every chat through a fresh conversation service on a temporary SQLite store."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'dialogues.db'}")
        store.create_schema()
        try:
            conv = Conversations(lambda: bot, store, now=lambda: PLAYED_AT)
            played = []
            for chat in chats:
                session: str | None = None
                turns = []
                for turn in chat["turns"]:
                    out = conv.chat(session, turn["text"])
                    session = out.session_id
                    turns.append((turn, out))
                played.append(turns)
            return played
        finally:
            store.close()


def evaluate_dialogues(bot: Bot, chats: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-turn, follow-up and per-chat figures, and the turns it got wrong."""
    counts = {k: 0 for k in ("turns", "route_ok", "right", "follows", "follows_right", "faq", "faq_handed",
                             "faq_clarified", "human", "human_hit", "chats_right")}
    errors = []
    played = play(bot, chats)
    for chat, turns in zip(chats, played, strict=True):
        all_right = True
        for n, (turn, out) in enumerate(turns):
            gold_human = turn.get("route") == "human"
            right = judge(turn, out)
            counts["turns"] += 1
            counts["route_ok"] += gold_human == (out.route == "human")
            counts["right"] += right
            if turn.get("follows"):
                counts["follows"] += 1
                counts["follows_right"] += right
            if gold_human:
                counts["human"] += 1
                counts["human_hit"] += out.route == "human"
            else:
                counts["faq"] += 1
                counts["faq_handed"] += out.route == "human"
                counts["faq_clarified"] += out.action == "clarify"
            if not right:
                all_right = False
                errors.append({"chat": chat.get("id"), "turn": n + 1, "text": turn["text"],
                               "gold": turn.get("faq"), "follows": bool(turn.get("follows")),
                               "action": out.action, "intent": out.intent, "reason": out.reason,
                               "confidence": round(out.confidence, 3),
                               "suggestions": [s["intent"] for s in out.suggestions]})
        counts["chats_right"] += all_right

    def rate(a: str, b: str) -> float | None:
        return counts[a] / counts[b] if counts[b] else None

    return {
        "chats": len(chats), "turns": counts["turns"],
        "route_accuracy": rate("route_ok", "turns"),
        "entry_accuracy": rate("right", "turns"),
        "follow_up_accuracy": rate("follows_right", "follows"), "follow_ups": counts["follows"],
        "faq_handoff_rate": rate("faq_handed", "faq"),
        "faq_clarify_rate": rate("faq_clarified", "faq"),
        "human_recall": rate("human_hit", "human"),
        "chat_accuracy": counts["chats_right"] / len(chats) if chats else None,
        "errors": errors,
    }


def format_dialogue_report(m: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    return "\n".join([
        f"chats / turns             {m['chats']} / {m['turns']}",
        f"route accuracy            {pct(m['route_accuracy'])}",
        f"entry accuracy            {pct(m['entry_accuracy'])}",
        f"follow-ups right          {pct(m['follow_up_accuracy'])} of {m['follow_ups']}",
        f"FAQ turns handed off      {pct(m['faq_handoff_rate'])}",
        f"FAQ turns asked again     {pct(m['faq_clarify_rate'])}",
        f"recall of human turns     {pct(m['human_recall'])}",
        f"chats with every turn right {pct(m['chat_accuracy'])}",
    ])
