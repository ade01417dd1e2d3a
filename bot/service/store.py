"""Persistence through SQLAlchemy: sessions, messages, handoffs and agents' labels.

Each method is one transaction, committed before it returns, so whatever the caller acknowledges
is on disk; the tables and their migrations are bot.service.schema's.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Select, func, or_, select, text, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import (
    AlreadyHandedOffError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SessionNotFoundError,
    StoreUnavailableError,
)
from bot.service.database import WRITE, make_engine, migrate, writer_queue
from bot.service.queue import QueueFilter, QueueRow, closed_page, open_rows, reply_wait
from bot.service.schema import (
    INSERT_SESSION,
    OPEN_STATUSES,
    SESSION_CONTEXT,
    SESSIONS,
    ChatSession,
    Handoff,
    Message,
    insert_message,
    new_token,
    queue_position,
    utcnow,
)

log = logging.getLogger(__name__)


def _handoff(s: Session, handoff_id: int, fresh: bool = False, lock: bool = False) -> Handoff:
    """The handoff; `fresh`: as the database has it now (after a Core UPDATE the session's copy may be
    stale); `lock`: until the transaction ends (PostgreSQL's row lock; SQLite's write lock holds it)."""
    h = s.get(Handoff, handoff_id, with_for_update=lock, populate_existing=lock)
    if h is None:
        raise NotFoundError(f"handoff {handoff_id} not found")
    if fresh:
        s.refresh(h)
    return h


def _open_handoff_of(session_id: str) -> Select[Handoff]:
    """The session's open handoff (the database allows one at a time)."""
    return select(Handoff).where(Handoff.session_id == session_id, Handoff.status.in_(OPEN_STATUSES))


def _claim(s: Session, handoff_id: int, agent: str) -> Handoff:
    done = s.execute(update(Handoff).where(Handoff.id == handoff_id, Handoff.status == "waiting")
                     .values(status="assigned", agent=agent, assigned_at=utcnow())
                     .execution_options(synchronize_session=False))
    h = _handoff(s, handoff_id, fresh=True)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"handoff {handoff_id} is already {h.status}" + (f" by {h.agent}" if h.agent else ""))
    return h


class Store:
    """All reads and writes of conversations; each method is one committed transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = writer_queue(url)  # SQLite's writers wait their turn here, not in its back-off

    def create_schema(self) -> None:
        """Bring the database to the newest migration (bot.service.database.migrate)."""
        migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def tx(self, write: bool = False) -> Iterator[Session]:
        """One transaction: committed whole, or rolled back whole; one that will `write` holds SQLite's
        write lock from its start, after this process's writers before it. Database errors become the
        core's errors (bad data 422, a constraint 409, anything else 503) with messages that hold no
        stored values: the driver's own text can quote a row (a phone number, an address)."""
        try:
            with self._writers if write else nullcontext(), self._sessions.begin() as s:
                if write:
                    s.connection(execution_options={WRITE: True})
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
                return s.execute(select(1)).scalar() == 1
        except StoreUnavailableError:
            return False

    # -- sessions and messages -------------------------------------------------------------
    def session_context(self, session_id: str | None, new_id: str | None = None) -> tuple[ChatSession, str | None]:
        """The session and its last shopper message (one read). For `session_id` None, a new one, not yet
        stored, under `new_id` or a fresh token: its turn's first write stores it (`new_session=True`), so
        a turn costs one transaction and a message that fails validation leaves no empty session."""
        if session_id is None:
            return ChatSession(id=new_id or new_token(), mode="bot", fallbacks=0, last_intent=None), None
        with self.tx() as s:
            row = s.connection().execute(SESSION_CONTEXT, {"session_id": session_id}).mappings().first()
        if row is None:
            raise SessionNotFoundError("session not found")
        values = dict(row)
        return ChatSession(**{k: v for k, v in values.items() if k != "last_text"}), values["last_text"]

    def _touch(self, s: Session, session_id: str, now: dt.datetime, new_session: bool, **values: Any) -> None:
        """Store a new session, or mark an existing one as updated (with `values`)."""
        conn = s.connection()
        if new_session:
            conn.execute(INSERT_SESSION, {"id": session_id, "created_at": now, "updated_at": now, "mode": "bot",
                                           "fallbacks": 0, "last_intent": None, **values})
        else:
            conn.execute(update(SESSIONS).where(SESSIONS.c.id == session_id).values(updated_at=now, **values))

    def record_turn(self, session_id: str, shopper_text: str, bot_text: str, *, state: dict[str, Any],
                    new_session: bool = False, **bot_fields: Any) -> tuple[Message, Message]:
        """One transaction for a turn the bot answered: the shopper's message, the reply, the new state
        (and the session itself when `new_session`)."""
        with self.tx(write=True) as s:
            now = utcnow()
            self._touch(s, session_id, now, new_session, **state)
            shopper = insert_message(s, session_id, "shopper", shopper_text, now)  # the smaller id
            return shopper, insert_message(s, session_id, "bot", bot_text, now, **bot_fields)

    def get_session(self, session_id: str) -> ChatSession:
        with self.tx() as s:
            chat = s.get(ChatSession, session_id)
        if chat is None:
            raise SessionNotFoundError("session not found")
        return chat

    def add_message(self, session_id: str, role: str, text: str, *, new_session: bool = False,
                    **fields: Any) -> Message:
        with self.tx(write=True) as s:
            now = utcnow()
            self._touch(s, session_id, now, new_session)
            return insert_message(s, session_id, role, text, now, **fields)

    def message_to_agent(self, session_id: str, text: str, answer: tuple[str, dict[str, Any], dict[str, Any]]
                         | None = None) -> tuple[Message, Handoff, Message | None] | None:
        """One transaction: the shopper's message stored for the person who has the chat, with that
        handoff; None (and nothing stored) when the session has no open handoff any more. `answer`
        (the bot's text, the session's new state, the reply's fields) is stored as the bot's reply
        while nobody has claimed the handoff, and dropped once a person has the chat. The handoff
        is locked (PostgreSQL; SQLite's write lock is the transaction's): a resolution or a claim
        waits for this message, or this message sees it."""
        with self.tx(write=True) as s:
            h = s.scalars(_open_handoff_of(session_id).with_for_update()).first()
            if h is None:
                return None
            reply = answer if answer is not None and h.status == "waiting" else None
            now = utcnow()
            self._touch(s, session_id, now, False, **(reply[1] if reply else {}))
            msg = insert_message(s, session_id, "shopper", text, now)
            h.last_message = text  # the queue shows what the shopper said last
            return msg, h, insert_message(s, session_id, "bot", reply[0], now, **reply[2]) if reply else None

    def messages(self, session_id: str, after: int = 0, limit: int = 500, newest: bool = False) -> list[Message]:
        """A session's messages after id `after`, oldest first: the first `limit`, or with `newest` the
        last `limit` (a long chat's transcript ends with what was said last)."""
        with self.tx() as s:
            q = select(Message).where(Message.session_id == session_id, Message.id > after)
            rows = list(s.scalars(q.order_by(Message.id.desc() if newest else Message.id).limit(limit)))
            return rows[::-1] if newest else rows

    # -- handoffs ---------------------------------------------------------------------------
    def hand_off(self, session_id: str, shopper_text: str, *, new_session: bool, reason: str, intent: str | None,
                 guesses: list[dict[str, Any]], bot_text: str,
                 bot_fields: dict[str, Any]) -> tuple[Message, Handoff, Message, int]:
        """One transaction: the shopper's message, the handoff, the session in human mode and the bot's
        reply, and the handoff's place in the queue. AlreadyHandedOffError when the
        session got an open handoff meanwhile (a concurrent message): nothing of this one is stored."""
        try:
            with self.tx(write=True) as s:
                if s.get_bind().dialect.name == "postgresql":  # one handoff joins the queue at a time, so
                    s.execute(text("SELECT pg_advisory_xact_lock(724158)"))  # its place counts those before
                now = utcnow()
                about = {"last_intent": intent} if intent else {}  # the chat's topic from now (policy.decide)
                self._touch(s, session_id, now, new_session, mode="human", fallbacks=0, **about)
                shopper = insert_message(s, session_id, "shopper", shopper_text, now)
                h = Handoff(session_id=session_id, reason=reason, intent=intent, guesses=guesses,
                            last_message=shopper_text, message_id=shopper.id, status="waiting", created_at=now)
                s.add(h)
                s.flush()
                position = queue_position(s, h.id)
                bot = insert_message(s, session_id, "bot", bot_text, now, **bot_fields)
                return shopper, h, bot, position
        except ConflictError:
            if not new_session and self.open_handoff(session_id) is not None:
                raise AlreadyHandedOffError("session already has an open handoff") from None
            raise

    def open_handoff(self, session_id: str) -> Handoff | None:
        with self.tx() as s:
            return s.scalars(_open_handoff_of(session_id)).first()

    def get_handoff(self, handoff_id: int) -> Handoff:
        with self.tx() as s:
            return _handoff(s, handoff_id)

    def open_handoffs(self, status: str | None = None, where: QueueFilter | None = None) -> list[QueueRow]:
        """Every waiting and assigned handoff (or those of one open status) that `where` keeps, oldest
        first, each with its place in the queue and the shopper's wait for a reply: one query."""
        with self.tx() as s:
            return open_rows(s, status, where or QueueFilter(), utcnow())

    def closed_handoffs(self, limit: int = 50, before: int | None = None,
                        where: QueueFilter | None = None) -> list[Handoff]:
        """Resolved handoffs, newest first, a page at a time (`before`: the last id of the page before)."""
        with self.tx() as s:
            return closed_page(s, limit, before, where or QueueFilter(), utcnow())

    def reply_wait(self, handoff_id: int) -> dt.datetime | None:
        """Since when the handoff's shopper has waited for a person's reply (None: the agent wrote last)."""
        with self.tx() as s:
            return s.execute(select(reply_wait()).where(Handoff.id == handoff_id)).scalar()

    def queue_position(self, handoff_id: int) -> int:
        """1-based place among waiting handoffs (0 when it is no longer waiting)."""
        with self.tx() as s:
            return queue_position(s, handoff_id)

    def claim(self, handoff_id: int, agent: str) -> Handoff:
        """waiting -> assigned; a conditional UPDATE so two agents cannot both claim it."""
        with self.tx(write=True) as s:
            return _claim(s, handoff_id, agent)

    def agent_reply(self, handoff_id: int, agent: str, text: str) -> tuple[Handoff, Message, bool]:
        """One transaction: take the handoff if it is waiting (replying takes it, as in any shop console),
        then store the agent's message; whether it was taken. A message that cannot be stored leaves the
        handoff as it was."""
        with self.tx(write=True) as s:
            h = _handoff(s, handoff_id, lock=True)
            claimed = h.status == "waiting"
            if claimed:
                h = _claim(s, handoff_id, agent)
            elif h.status != "assigned":
                raise ConflictError(f"handoff {handoff_id} is {h.status}")
            elif h.agent != agent:
                raise ConflictError(f"handoff {handoff_id} is assigned to {h.agent}")
            now = utcnow()
            self._touch(s, h.session_id, now, False)
            return h, insert_message(s, h.session_id, "agent", text, now, author=agent), claimed

    def resolve(self, handoff_id: int, agent: str, label: str | None, note: str | None,
                system_text: str = "") -> tuple[Handoff, Message | None]:
        """One transaction: close the handoff, give the session back to the bot, and store the system
        message that tells the shopper so (when `system_text`)."""
        with self.tx(write=True) as s:
            now = utcnow()
            # A conditional UPDATE, so that of two agents resolving at once exactly one does (SQLite
            # ignores FOR UPDATE).
            done = s.execute(update(Handoff)
                             .where(Handoff.id == handoff_id, Handoff.status.in_(OPEN_STATUSES),
                                    or_(Handoff.status == "waiting", Handoff.agent == agent))
                             .values(status="resolved", label=label, note=note, resolved_at=now,
                                     agent=func.coalesce(Handoff.agent, agent))
                             .execution_options(synchronize_session=False))
            h = _handoff(s, handoff_id, fresh=True)
            if done.rowcount != 1:  # type: ignore[attr-defined]
                if h.status not in OPEN_STATUSES:
                    raise ConflictError(f"handoff {handoff_id} is already {h.status}")
                raise ConflictError(f"handoff {handoff_id} is assigned to {h.agent}")
            # back to the bot with no topic: the person dealt with the handoff's, the bot did not see how
            self._touch(s, h.session_id, now, False, mode="bot", fallbacks=0, last_intent=None)
            msg = insert_message(s, h.session_id, "system", system_text, now) if system_text else None
            return h, msg

    def labelled(self) -> list[tuple[str, str | None, dt.datetime | None]]:
        """(shopper text, label, resolved time) of every resolved handoff with a label."""
        with self.tx() as s:
            rows = s.execute(select(Message.text, Handoff.label, Handoff.resolved_at)
                             .join(Message, Message.id == Handoff.message_id)
                             .where(Handoff.label.is_not(None)).order_by(Handoff.id))
            return [(r[0], r[1], r[2]) for r in rows]
