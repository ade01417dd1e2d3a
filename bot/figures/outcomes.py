"""What came of a conversation: what shoppers say of the service (有帮助 / 没帮助 on the bot's answers,
1-5 after an agent's conversation ended) and the orders the shop's checkout reports for a chat
session. Each call is one committed transaction of the store (bot.service.store)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from bot.errors import ConflictError, InvalidInputError, NotFoundError, SessionNotFoundError
from bot.service.schema import CLOSED_STATUSES, ChatSession, Feedback, Handoff, Message, Order, Rating, utcnow
from bot.service.store import Store


def give_feedback(store: Store, session_id: str, message_id: int, helpful: bool) -> Feedback:
    """有帮助 / 没帮助 on an answer of the bot in the session; tapping again overwrites."""
    with store.tx(write=True) as s:
        if s.get(ChatSession, session_id) is None:
            raise SessionNotFoundError("session not found")
        msg = s.get(Message, message_id)
        if msg is None or msg.session_id != session_id:
            raise NotFoundError(f"message {message_id} not found in this session")
        if msg.role != "bot" or (msg.extra or {}).get("action") != "answer":
            raise InvalidInputError(f"message {message_id} is not an answer of the bot")
        fb = s.scalars(select(Feedback).where(Feedback.message_id == message_id)).first()
        if fb is None:
            fb = Feedback(message_id=message_id, session_id=session_id)
            s.add(fb)
        fb.helpful, fb.at = helpful, utcnow()
        s.flush()
        return fb


def rate(store: Store, session_id: str, score: int, comment: str | None) -> Rating:
    """The shopper's rating of the session's last conversation with an agent, once it was resolved;
    once per handoff."""
    if not 1 <= score <= 5:
        raise InvalidInputError("score must be 1 to 5")
    with store.tx(write=True) as s:
        if s.get(ChatSession, session_id) is None:
            raise SessionNotFoundError("session not found")
        h = s.scalars(select(Handoff).where(Handoff.session_id == session_id, Handoff.status.in_(CLOSED_STATUSES))
                      .order_by(Handoff.id.desc()).limit(1)).first()
        if h is None:
            raise ConflictError("nothing to rate yet: no conversation with an agent has ended in this session")
        if s.scalar(select(func.count(Rating.id)).where(Rating.handoff_id == h.id)):
            raise ConflictError("this conversation with an agent was rated already")
        rating = Rating(handoff_id=h.id, session_id=session_id, score=score, comment=comment, at=utcnow())
        s.add(rating)
        s.flush()
        return rating


def record_order(store: Store, session_id: str, order_id: str, amount: Decimal,
                 at: dt.datetime | None = None) -> tuple[Order, bool]:
    """The order a chat session led to, and whether it is new: reporting the same order again changes
    nothing (a checkout retries); the same order id with another session or amount is a conflict."""
    cents = amount * 100
    if cents != cents.to_integral_value() or cents < 0:
        raise InvalidInputError("amount must be yuan with at most 2 decimals, not negative")
    if at is not None and at.tzinfo is None:
        raise InvalidInputError("'at' needs a time zone (2026-11-26T10:00:00+08:00)")
    with store.tx(write=True) as s:
        known = s.scalars(select(Order).where(Order.order_id == order_id)).first()
        if known is not None:
            if known.session_id != session_id or known.amount_cents != int(cents):
                raise ConflictError(f"order {order_id} was reported with another session or amount")
            return known, False
        if s.get(ChatSession, session_id) is None:
            raise SessionNotFoundError("session not found")
        now = utcnow()
        order = Order(order_id=order_id, session_id=session_id, amount_cents=int(cents),
                      at=(at or now).astimezone(dt.UTC), created_at=now)
        s.add(order)
        s.flush()
        return order, True
