"""The database: its engine and its migrations (bot/service/migrations).

SQLite (a file, WAL mode) by default; PostgreSQL by setting the URL.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from bot.errors import StoreUnavailableError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

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
