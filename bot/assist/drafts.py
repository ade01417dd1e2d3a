"""Drafts for an agent: the bot's best answers to the shopper's latest message of a handoff.

The agent picks one, edits it and sends it; the bot never sends a draft itself. Entries that hand
off (human.*) have no answer worth drafting and are left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.dialogue.engine import Bot
from bot.errors import NotFoundError
from bot.language.normalize import normalize
from bot.service.schema import Handoff, Message, iso
from bot.service.store import Store

DRAFTS = 3  # as many as the console shows in one row


def latest_shopper_message(store: Store, handoff_id: int) -> tuple[Handoff, Message | None]:
    """The handoff and its shopper's latest message (None if the shopper never wrote, which a handoff's
    own message rules out but an imported history may not)."""
    with store.tx() as s:
        h = s.get(Handoff, handoff_id)
        if h is None:
            raise NotFoundError(f"handoff {handoff_id} not found")
        q = (select(Message).where(Message.session_id == h.session_id, Message.role == "shopper")
             .order_by(Message.id.desc()).limit(1))
        return h, s.scalars(q).first()


def drafts(bot: Bot, store: Store, handoff_id: int, k: int = DRAFTS) -> dict[str, Any]:
    """`{"handoff_id", "message": {id, text, created_at} | None, "drafts": [{intent, title, confidence, text}]}`:
    the bot's `k` likeliest answers to the shopper's latest message, filled as the bot would send them."""
    h, msg = latest_shopper_message(store, handoff_id)
    out: dict[str, Any] = {"handoff_id": h.id, "message": None, "drafts": []}
    if msg is None:
        return out
    out["message"] = {"id": msg.id, "text": msg.text, "created_at": iso(msg.created_at)}
    if (msg.extra or {}).get("image"):  # a picture (bot.media): nothing the bot could answer
        return out
    norm = normalize(msg.text)
    if not norm:  # only emoji or symbols: nothing to rank
        return out
    ranked = [p for p in bot.rank(msg.text) if p.intent in bot.kb.entries and not bot.kb.entries[p.intent].is_human]
    out["drafts"] = [{"intent": p.intent, "title": bot.kb.entries[p.intent].title or p.intent,
                      "confidence": round(p.confidence, 4), "text": bot.answer_text(p.intent, norm)}
                     for p in ranked[:k]]
    return out
