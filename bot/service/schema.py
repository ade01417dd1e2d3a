"""The database's tables, and the chat path's statements on them (the engine and the migrations:
bot/service/database.py)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(t: dt.datetime) -> dt.datetime:
    """A stored time, aware: SQLite hands back naive datetimes that were stored as UTC."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def new_token() -> str:
    """An unguessable session id (256 bits)."""
    return secrets.token_urlsafe(32)


class Base(DeclarativeBase):
    pass


class ChatSession(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    mode: Mapped[str] = mapped_column(String(16), default="bot")  # bot | human
    fallbacks: Mapped[int] = mapped_column(Integer, default=0)
    last_intent: Mapped[str | None] = mapped_column(String(64), nullable=True)


_SHOPPERS, _ACTIONS = text("role = 'shopper'"), text("action IS NOT NULL")  # (a column is named text)


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # shopper | bot | agent | system
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    author: Mapped[str | None] = mapped_column(String(64), nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # What the bot did (answer | suggest | clarify | handoff), the figures' key (also in `extra`).
    action: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # The figures (bot.figures.analytics) read shoppers' messages and the bot's actions by time: two
    # partial indexes hold all they read, so a month of a busy shop is counted from them alone. Neither
    # starts with the role, whose few values would tempt a planner without statistics away from the
    # session index that every chat turn uses.
    __table_args__ = (
        Index("ix_messages_shopper_time", "created_at", "session_id", "role",  # (role: covering for SQLite)
              sqlite_where=_SHOPPERS, postgresql_where=_SHOPPERS),
        Index("ix_messages_action_time", "action", "created_at", "intent",
              sqlite_where=_ACTIONS, postgresql_where=_ACTIONS),
    )


class Handoff(Base):
    __tablename__ = "handoffs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="waiting")
    reason: Mapped[str] = mapped_column(String(32))
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    guesses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    last_message: Mapped[str] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the message that was handed off
    agent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # When its present agent got it (an assignment, a transfer; a claim sets assigned_at): their silence counts from it.
    taken_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    # One open handoff per session, enforced by the database: concurrent messages of one session
    # cannot open two (a partial unique index, on SQLite and PostgreSQL alike).
    __table_args__ = (
        Index("uq_handoffs_open_session", "session_id", unique=True,
              sqlite_where=text("status IN ('waiting', 'assigned')"),
              postgresql_where=text("status IN ('waiting', 'assigned')")),
    )


class AgentPresence(Base):
    """An agent's chosen status (online | busy | away), when their console was last heard from, and their
    turn in automatic assignment (bot.service.desk)."""

    __tablename__ = "agent_presence"
    agent: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    turn: Mapped[int] = mapped_column(Integer, default=0)  # the round robin's: the lowest is given the next chat


class KbChange(Base):
    """The audit log of the knowledge base: every change a manager made, with the entry before and after."""

    __tablename__ = "kb_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    who: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64), index=True)  # an entry's id, or "shop" for the shop's facts
    action: Mapped[str] = mapped_column(String(16))  # create | update | shop
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ReviewDecision(Base):
    """What a manager decided about a shopper message of the review queue (one decision a message)."""

    __tablename__ = "review_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    action: Mapped[str] = mapped_column(String(16))  # add_examples | new_entry | human | dismiss
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    who: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Feedback(Base):
    """A shopper's 有帮助 / 没帮助 on one of the bot's answers (one a message; a second tap overwrites)."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Rating(Base):
    """A shopper's rating (1 非常不满意 .. 5 非常满意) of the service, once per resolved handoff."""

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id"), unique=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Order(Base):
    """An order the shop's checkout reported for a chat session (询单转化), once per order id."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # in fen: exact, on every database
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)  # when it was placed
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Picture(Base):
    """A picture a shopper sent to a person (bot.media): re-encoded bytes, never the shopper's file or name."""

    __tablename__ = "pictures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)  # whose: the shopper's key
    content_type: Mapped[str] = mapped_column(String(32))  # image/jpeg | image/png | image/webp
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


OPEN_STATUSES = ("waiting", "assigned")
CLOSED_STATUSES = ("resolved",)


# The chat path's writes as Core statements on the tables, built once: no unit-of-work flush and no
# per-call statement construction (together most of SQLAlchemy's cost of an ORM insert).
SESSIONS, MESSAGES = Base.metadata.tables["sessions"], Base.metadata.tables["messages"]
INSERT_SESSION = insert(SESSIONS)
INSERT_MESSAGE = insert(MESSAGES).returning(MESSAGES.c.id)
LAST_SHOPPER_TEXT = (select(MESSAGES.c.text)
                      .where(MESSAGES.c.session_id == SESSIONS.c.id, MESSAGES.c.role == "shopper")
                      .order_by(MESSAGES.c.id.desc()).limit(1).scalar_subquery())
SESSION_CONTEXT = select(*SESSIONS.c, LAST_SHOPPER_TEXT.label("last_text")).where(
    SESSIONS.c.id == bindparam("session_id"))


def insert_message(s: Session, session_id: str, role: str, text: str, now: dt.datetime, **fields: Any) -> Message:
    """One INSERT ... RETURNING id; the row as a detached Message."""
    values = {"session_id": session_id, "role": role, "text": text, "created_at": now, "intent": None,
              "confidence": None, "author": None, "extra": None, **fields}
    values["action"] = (values["extra"] or {}).get("action") if role == "bot" else None
    msg_id = s.connection().execute(INSERT_MESSAGE, values).scalar_one()
    return Message(id=msg_id, **values)


def queue_position(s: Session, handoff_id: int) -> int:
    """1-based place among waiting handoffs (0 when it is not waiting)."""
    status = s.scalar(select(Handoff.status).where(Handoff.id == handoff_id))
    if status != "waiting":
        return 0
    ahead = s.scalar(select(func.count(Handoff.id)).where(Handoff.status == "waiting", Handoff.id < handoff_id))
    return int(ahead or 0) + 1


# How a message and a handoff read outside (events, the API).
# Messages of a chat only agents see (a transfer and its note, bot.assist.transfer): never in the shopper's history.
TRANSFER = "transfer"
REQUEUE = "requeue"  # the note left in a chat that went back to the queue (bot.service.desk)
AGENTS_ONLY = (TRANSFER, REQUEUE)


def message_dict(m: Message) -> dict[str, Any]:
    out = {"id": m.id, "role": m.role, "text": m.text, "intent": m.intent, "author": m.author,
           "created_at": iso(m.created_at)}
    if m.role in AGENTS_ONLY:  # a transfer: to whom; a chat back in the queue: after how many seconds unanswered
        out.update({k: (m.extra or {}).get(k) for k in ("to", "after")})
    if (m.extra or {}).get("image"):  # a picture the shopper sent (bot.media): {"id", "type", "width", "height"}
        out["image"] = m.extra["image"]  # type: ignore[index]
    return out


def handoff_dict(h: Handoff, position: int | None = None, waiting_since: dt.datetime | None = None) -> dict[str, Any]:
    out = {"id": h.id, "session_id": h.session_id, "status": h.status, "reason": h.reason, "intent": h.intent,
           "guesses": h.guesses, "last_message": h.last_message, "agent": h.agent, "label": h.label,
           "note": h.note, "created_at": iso(h.created_at), "assigned_at": iso(h.assigned_at),
           "resolved_at": iso(h.resolved_at), "waiting_since": iso(waiting_since)}
    if position is not None:
        out["position"] = position
    return out


def iso(t: dt.datetime | None) -> str | None:
    """ISO 8601 with the zone; SQLite hands back naive datetimes that were stored as UTC."""
    if t is None:
        return None
    return as_utc(t).isoformat()
