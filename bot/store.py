"""Persistence through SQLAlchemy: sessions, messages, handoffs and agents' labels.

SQLite (a file, WAL mode) by default; PostgreSQL by setting the URL. Every write commits
before it returns, so whatever the caller acknowledges is on disk.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
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
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from bot.errors import ConflictError, InvalidInputError, KefuError, NotFoundError

log = logging.getLogger(__name__)


class StoreUnavailableError(KefuError):
    """The database cannot be reached; the caller should answer 503 and retry later."""


class AlreadyHandedOffError(ConflictError):
    """The session already has an open handoff (the database allows one at a time)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


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


OPEN_STATUSES = ("waiting", "assigned")
CLOSED_STATUSES = ("resolved",)
NO_SESSION = "会话不存在或已过期，请刷新页面重新开始"


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL, a busy timeout and foreign keys."""
    # hide_parameters: a failed statement's values (shoppers' messages, with phone numbers and
    # addresses) never reach an exception's text, and so never a log.
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process in WAL mode
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)


# The chat path's writes as Core statements on the tables, built once: no unit-of-work flush and no
# per-call statement construction (together most of SQLAlchemy's cost of an ORM insert).
_SESSIONS, _MESSAGES = ChatSession.__table__, Message.__table__
_INSERT_SESSION = insert(_SESSIONS)
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id)
_LAST_SHOPPER_TEXT = (select(_MESSAGES.c.text)
                      .where(_MESSAGES.c.session_id == _SESSIONS.c.id, _MESSAGES.c.role == "shopper")
                      .order_by(_MESSAGES.c.id.desc()).limit(1).scalar_subquery())
_SESSION_CONTEXT = select(*_SESSIONS.c, _LAST_SHOPPER_TEXT.label("last_text")).where(
    _SESSIONS.c.id == bindparam("session_id"))


def _insert_message(s: Session, session_id: str, role: str, text: str, now: dt.datetime, **fields: Any) -> Message:
    """One INSERT ... RETURNING id; the row as a detached Message."""
    values = {"session_id": session_id, "role": role, "text": text, "created_at": now, "intent": None,
              "confidence": None, "author": None, "extra": None, **fields}
    msg_id = s.connection().execute(_INSERT_MESSAGE, values).scalar_one()
    return Message(id=msg_id, **values)


def _handoff(s: Session, handoff_id: int) -> Handoff:
    h = s.get(Handoff, handoff_id)
    if h is None:
        raise NotFoundError(f"handoff {handoff_id} not found")
    return h


def _position(s: Session, handoff_id: int) -> int:
    """1-based place among waiting handoffs (0 when it is not waiting)."""
    status = s.scalar(select(Handoff.status).where(Handoff.id == handoff_id))
    if status != "waiting":
        return 0
    ahead = s.scalar(select(func.count(Handoff.id)).where(Handoff.status == "waiting", Handoff.id < handoff_id))
    return int(ahead or 0) + 1


def _claim(s: Session, handoff_id: int, agent: str) -> Handoff:
    done = s.execute(update(Handoff).where(Handoff.id == handoff_id, Handoff.status == "waiting")
                     .values(status="assigned", agent=agent, assigned_at=utcnow())
                     .execution_options(synchronize_session=False))
    h = _fresh(s, handoff_id)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"handoff {handoff_id} is already {h.status}" + (f" by {h.agent}" if h.agent else ""))
    return h


def _fresh(s: Session, handoff_id: int) -> Handoff:
    """The handoff as the database has it now (after a Core UPDATE the session's copy may be stale)."""
    h = _handoff(s, handoff_id)
    s.refresh(h)
    return h


def _session(s: Session, session_id: str) -> ChatSession:
    chat = s.get(ChatSession, session_id)
    if chat is None:
        raise NotFoundError(NO_SESSION)
    return chat


class Store:
    """All reads and writes of conversations; each method is one committed transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        """Bring the schema to the newest migration (bot/migrations), creating it on first start.

        Two starting servers never migrate at once: PostgreSQL takes an advisory lock, an SQLite
        file a lock on a file beside it (`kefu serve --workers N` starts N processes together).
        """
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
        with self._sqlite_file_lock():
            self._upgrade(cfg, command)

    @contextmanager
    def _sqlite_file_lock(self) -> Iterator[None]:
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate-lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _upgrade(self, cfg: Any, command: Any) -> None:
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(724157)"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreUnavailableError(f"database unavailable: {type(exc.orig).__name__}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """One transaction: committed whole, or rolled back whole. Database errors become the core's
        errors (bad data 422, a constraint 409, anything else 503) with messages that hold no
        stored values: the driver's own text can quote a row (a phone number, an address)."""
        try:
            with self._sessions.begin() as s:
                yield s
        except (DataError, UnicodeError) as exc:  # a NUL (PostgreSQL), a lone surrogate (any driver)
            log.warning("database refused a value: %s", type(getattr(exc, "orig", exc)).__name__)
            raise InvalidInputError("the text contains characters that cannot be stored") from None
        except IntegrityError as exc:
            log.warning("database constraint: %s", type(exc.orig).__name__)
            raise ConflictError("the record changed meanwhile; try again") from None
        except DBAPIError as exc:  # OperationalError, InterfaceError, InternalError...
            log.warning("database unavailable: %s", type(exc.orig).__name__)
            raise StoreUnavailableError("database unavailable; try again shortly") from None

    def ping(self) -> bool:
        try:
            with self.tx() as s:
                s.execute(select(1))
            return True
        except StoreUnavailableError:
            return False

    # -- sessions and messages -------------------------------------------------------------
    def session_context(self, session_id: str | None) -> tuple[ChatSession, str | None]:
        """The session and its last shopper message (one read). For `session_id` None, a new session
        that is not stored yet: the first write of its turn stores it (`new_session=True`), so a
        turn costs one transaction and a message that fails validation leaves no empty session."""
        if session_id is None:
            return ChatSession(id=new_token(), mode="bot", fallbacks=0, last_intent=None), None
        with self.tx() as s:
            row = s.connection().execute(_SESSION_CONTEXT, {"session_id": session_id}).mappings().first()
        if row is None:
            raise NotFoundError(NO_SESSION)
        values = dict(row)
        last = values.pop("last_text")
        return ChatSession(**values), last

    def _touch(self, s: Session, session_id: str, now: dt.datetime, new_session: bool, **values: Any) -> None:
        """Store a new session, or mark an existing one as updated (with `values`)."""
        conn = s.connection()
        if new_session:
            conn.execute(_INSERT_SESSION, {"id": session_id, "created_at": now, "updated_at": now, "mode": "bot",
                                           "fallbacks": 0, "last_intent": None, **values})
        else:
            conn.execute(update(_SESSIONS).where(_SESSIONS.c.id == session_id).values(updated_at=now, **values))

    def record_turn(self, session_id: str, shopper_text: str, bot_text: str, *, state: dict[str, Any],
                    new_session: bool = False, **bot_fields: Any) -> tuple[Message, Message]:
        """One transaction for a turn the bot answered: the shopper's message, the reply, the new state
        (and the session itself when `new_session`)."""
        with self.tx() as s:
            now = utcnow()
            self._touch(s, session_id, now, new_session, **state)
            shopper = _insert_message(s, session_id, "shopper", shopper_text, now)  # the smaller id
            return shopper, _insert_message(s, session_id, "bot", bot_text, now, **bot_fields)

    def get_session(self, session_id: str) -> ChatSession:
        with self.tx() as s:
            return _session(s, session_id)

    def add_message(self, session_id: str, role: str, text: str, *, new_session: bool = False,
                    **fields: Any) -> Message:
        with self.tx() as s:
            now = utcnow()
            self._touch(s, session_id, now, new_session)
            return _insert_message(s, session_id, role, text, now, **fields)

    def message_to_agent(self, session_id: str, text: str) -> tuple[Message, Handoff] | None:
        """One transaction: the shopper's message stored for the person who has the chat, with that
        handoff; None (and nothing stored) when the session has no open handoff any more."""
        with self.tx() as s:
            h = s.scalars(select(Handoff).where(Handoff.session_id == session_id,
                                                Handoff.status.in_(OPEN_STATUSES))).first()
            if h is None:
                return None
            now = utcnow()
            self._touch(s, session_id, now, False)
            msg = _insert_message(s, session_id, "shopper", text, now)
            return msg, h

    def messages(self, session_id: str, after: int = 0, limit: int = 500) -> list[Message]:
        with self.tx() as s:
            rows = s.scalars(select(Message).where(Message.session_id == session_id, Message.id > after)
                             .order_by(Message.id).limit(limit))
            return list(rows)

    def recent_messages(self, session_id: str, limit: int = 500) -> list[Message]:
        """The newest `limit` messages of a session, oldest first (a long chat's transcript ends with
        what was said last, not with what was said first)."""
        with self.tx() as s:
            rows = list(s.scalars(select(Message).where(Message.session_id == session_id)
                                  .order_by(Message.id.desc()).limit(limit)))
            return rows[::-1]

    def count_messages(self) -> int:
        with self.tx() as s:
            return int(s.scalar(select(func.count(Message.id))) or 0)

    # -- handoffs ---------------------------------------------------------------------------
    def hand_off(self, session_id: str, shopper_text: str, *, new_session: bool, reason: str, intent: str | None,
                 guesses: list[dict[str, Any]], bot_text: Callable[[int], str],
                 bot_fields: dict[str, Any]) -> tuple[Message, Handoff, Message, int]:
        """One transaction: the shopper's message, the handoff, the session in human mode and the bot's
        reply (`bot_text(position)`, which says the place in the queue). AlreadyHandedOffError when the
        session got an open handoff meanwhile (a concurrent message): nothing of this one is stored."""
        try:
            with self.tx() as s:
                now = utcnow()
                self._touch(s, session_id, now, new_session, mode="human", fallbacks=0)
                shopper = _insert_message(s, session_id, "shopper", shopper_text, now)
                h = Handoff(session_id=session_id, reason=reason, intent=intent, guesses=guesses,
                            last_message=shopper_text, message_id=shopper.id, status="waiting", created_at=now)
                s.add(h)
                s.flush()
                position = _position(s, h.id)
                bot = _insert_message(s, session_id, "bot", bot_text(position), now, **bot_fields)
                return shopper, h, bot, position
        except ConflictError:
            if not new_session and self.open_handoff(session_id) is not None:
                raise AlreadyHandedOffError("session already has an open handoff") from None
            raise

    def open_handoff(self, session_id: str) -> Handoff | None:
        with self.tx() as s:
            return s.scalars(select(Handoff).where(Handoff.session_id == session_id,
                                                   Handoff.status.in_(OPEN_STATUSES))
                             .order_by(Handoff.id.desc()).limit(1)).first()

    def get_handoff(self, handoff_id: int) -> Handoff:
        with self.tx() as s:
            return _handoff(s, handoff_id)

    def open_handoffs(self, status: str | None = None) -> list[tuple[Handoff, int | None]]:
        """Every waiting and assigned handoff (or those of one open status), oldest first, each with
        its place in the waiting queue: complete whatever the history, in one query."""
        statuses = (status,) if status else OPEN_STATUSES
        with self.tx() as s:
            rows = list(s.scalars(select(Handoff).where(Handoff.status.in_(statuses)).order_by(Handoff.id)))
        out, waiting = [], 0
        for h in rows:
            waiting += h.status == "waiting"
            out.append((h, waiting if h.status == "waiting" else None))
        if status == "assigned":  # positions count the waiting ones, which this list does not hold
            return [(h, None) for h, _ in out]
        return out

    def closed_handoffs(self, limit: int = 50, before: int | None = None) -> list[Handoff]:
        """Resolved handoffs, newest first, a page at a time (`before`: the last id of the page before)."""
        with self.tx() as s:
            q = select(Handoff).where(Handoff.status.in_(CLOSED_STATUSES)).order_by(Handoff.id.desc()).limit(limit)
            if before is not None:
                q = q.where(Handoff.id < before)
            return list(s.scalars(q))

    def queue_position(self, handoff_id: int) -> int:
        """1-based place among waiting handoffs (0 when it is no longer waiting)."""
        with self.tx() as s:
            return _position(s, handoff_id)

    def claim(self, handoff_id: int, agent: str) -> Handoff:
        """waiting -> assigned; a conditional UPDATE so two agents cannot both claim it."""
        with self.tx() as s:
            return _claim(s, handoff_id, agent)

    def agent_reply(self, handoff_id: int, agent: str, text: str) -> tuple[Handoff, Message]:
        """One transaction: take the handoff if it is waiting (replying takes it, as in any shop console),
        then store the agent's message. A message that cannot be stored leaves the handoff as it was."""
        with self.tx() as s:
            h = _handoff(s, handoff_id)
            if h.status == "waiting":
                h = _claim(s, handoff_id, agent)
            elif h.status != "assigned":
                raise ConflictError(f"handoff {handoff_id} is {h.status}")
            elif h.agent != agent:
                raise ConflictError(f"handoff {handoff_id} is assigned to {h.agent}")
            now = utcnow()
            self._touch(s, h.session_id, now, False)
            return h, _insert_message(s, h.session_id, "agent", text, now, author=agent)

    def resolve(self, handoff_id: int, agent: str, label: str | None, note: str | None,
                system_text: str = "") -> tuple[Handoff, Message | None]:
        """One transaction: close the handoff, give the session back to the bot, and store the system
        message that tells the shopper so (when `system_text`)."""
        with self.tx() as s:
            now = utcnow()
            # A conditional UPDATE, so that of two agents resolving at once exactly one does (SQLite
            # ignores FOR UPDATE).
            done = s.execute(update(Handoff)
                             .where(Handoff.id == handoff_id, Handoff.status.in_(OPEN_STATUSES),
                                    or_(Handoff.status == "waiting", Handoff.agent == agent))
                             .values(status="resolved", label=label, note=note, resolved_at=now,
                                     agent=func.coalesce(Handoff.agent, agent))
                             .execution_options(synchronize_session=False))
            h = _fresh(s, handoff_id)
            if done.rowcount != 1:  # type: ignore[attr-defined]
                if h.status not in OPEN_STATUSES:
                    raise ConflictError(f"handoff {handoff_id} is already {h.status}")
                raise ConflictError(f"handoff {handoff_id} is assigned to {h.agent}")
            self._touch(s, h.session_id, now, False, mode="bot", fallbacks=0)
            msg = _insert_message(s, h.session_id, "system", system_text, now) if system_text else None
            return h, msg

    def labelled(self) -> list[tuple[str, str, dt.datetime]]:
        """(shopper text, label, resolved time) of every resolved handoff with a label."""
        with self.tx() as s:
            rows = s.execute(select(Message.text, Handoff.label, Handoff.resolved_at)
                             .join(Message, Message.id == Handoff.message_id)
                             .where(Handoff.label.is_not(None)).order_by(Handoff.id))
            return [(r[0], r[1], r[2]) for r in rows]
