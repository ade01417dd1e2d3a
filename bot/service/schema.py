"""The database: its tables, its engine, and its migrations (bot/service/migrations).

SQLite (a file, WAL mode) by default; PostgreSQL by setting the URL.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
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
    String,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bot.errors import StoreUnavailableError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


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

    # The figures (bot.service.analytics) read shoppers' messages and the bot's actions by time: two
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

    # One open handoff per session, enforced by the database: concurrent messages of one session
    # cannot open two (a partial unique index, on SQLite and PostgreSQL alike).
    __table_args__ = (
        Index("uq_handoffs_open_session", "session_id", unique=True,
              sqlite_where=text("status IN ('waiting', 'assigned')"),
              postgresql_where=text("status IN ('waiting', 'assigned')")),
    )


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


OPEN_STATUSES = ("waiting", "assigned")
CLOSED_STATUSES = ("resolved",)


WRITE = "kefu_write"  # execution option of a transaction that will write (bot.service.store.Store.tx)


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and foreign keys."""
    # hide_parameters: a failed statement's values (shoppers' messages, with phone numbers and
    # addresses) never reach an exception's text, and so never a log.
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            conn.isolation_level = None  # the driver begins no transaction of its own: _begin does
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process in WAL mode
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        # Every transaction begins before its first statement, reads included (the driver would begin
        # only at the first write, leaving a read-then-write outside one transaction), and one that
        # writes (`WRITE`) takes the database's write lock at once: what it reads cannot change
        # before it writes, and writers wait their turn instead of failing on a stale snapshot.
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


# SQLite has one writer at a time, and the driver's busy handler sleeps up to 100 ms a try while the lock sits
# free: a process's writers queue on a lock per database URL instead (Store.tx; README: SQLite under load).
_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_GUARD = threading.Lock()


def writer_queue(url: str) -> AbstractContextManager[Any]:
    """The process's queue for the writers of an SQLite database (for another database, none)."""
    if not url.startswith("sqlite"):
        return nullcontext()
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(url, threading.RLock())


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


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration, creating it on first start.

    Two starting servers never migrate at once: PostgreSQL takes an advisory lock, an SQLite
    file a lock on a file beside it (`kefu serve --workers N` starts N processes together).
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _sqlite_file_lock(engine):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(724157)"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreUnavailableError(f"database unavailable: {type(exc.orig).__name__}") from None


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
