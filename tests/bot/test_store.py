"""The store on SQLite and PostgreSQL: schema set-up, one open handoff per session, whole actions,
database errors as the core's errors, the queue complete whatever the history."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from bot.errors import AlreadyHandedOffError, ConflictError, InvalidInputError
from bot.service.conversations import Conversations
from bot.service.database import MIGRATIONS
from bot.service.store import Store

PHONE = "13912345678"


def _migrate(url: str) -> None:
    Store(url).create_schema()


def _migrate_to(conn: sa.Connection, revision: str) -> None:
    """The schema as an older kefu left it (a migration's starting point)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def test_processes_starting_together_migrate_one_sqlite_file(tmp_path: Path) -> None:
    # `kefu serve --workers N` starts N processes that all bring the schema up at once.
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(6):
        url = f"sqlite:///{tmp_path / f'k{round_}.db'}"
        procs = [ctx.Process(target=_migrate, args=(url,)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        store = Store(url)
        chat = store.session_context(None)[0]
        store.add_message(chat.id, "shopper", "在吗", new_session=True)
        assert store.get_session(chat.id).mode == "bot"
        store.close()


@pytest.fixture()
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.create_schema()
    yield s
    s.close()


def new_handoff(store: Store, text: str = "转人工", session_id: str | None = None) -> tuple[str, int]:
    sid = session_id or store.session_context(None)[0].id
    _, h, _, _ = store.hand_off(sid, text, new_session=session_id is None, reason="requested",
                                intent="human.request", guesses=[], bot_text="稍等",
                                bot_fields={})
    return sid, h.id


def test_a_handoff_makes_its_entry_what_the_chat_is_about_until_it_is_resolved(store: Store) -> None:
    # The next message is read after the handoff's entry (还是不行 about the problem stays the person's).
    sid, hid = new_handoff(store)
    chat, last_text = store.session_context(sid)
    assert (chat.mode, chat.last_intent, last_text) == ("human", "human.request", "转人工")
    store.resolve(hid, "alice", None, None)  # back to the bot, with no topic: the person dealt with it
    chat, last_text = store.session_context(sid)
    assert (chat.mode, chat.last_intent, last_text) == ("bot", None, "转人工")


def test_the_database_allows_one_open_handoff_per_session(store: Store) -> None:
    sid, first = new_handoff(store)
    with pytest.raises(AlreadyHandedOffError):
        new_handoff(store, "我要投诉", session_id=sid)
    # Nothing of the refused action was stored: one shopper message, one bot message.
    assert [m.role for m in store.messages(sid)] == ["shopper", "bot"]
    # Even a raw INSERT that skips the store's code is refused by the partial unique index.
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO handoffs (session_id, status, reason, guesses, last_message, created_at) "
                             "VALUES (:s, 'assigned', 'requested', '[]', 'x', CURRENT_TIMESTAMP)"), {"s": sid})
    store.resolve(first, "alice", None, None)
    _, second = new_handoff(store, "又坏了", session_id=sid)  # a resolved handoff does not count
    assert store.open_handoff(sid).id == second  # type: ignore[union-attr]


def test_concurrent_messages_of_one_session_make_one_handoff(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store)
    sid = conv.chat(None, "在吗").session_id
    barrier = threading.Barrier(8)
    results: list[Any] = []

    def send() -> None:
        barrier.wait()
        results.append(conv.chat(sid, "转人工"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r.route == "human" for r in results)
    assert len({r.handoff["id"] for r in results}) == 1
    assert len([r for r in store.open_handoffs() if r.handoff.session_id == sid]) == 1
    shopper = [m.text for m in store.messages(sid) if m.role == "shopper"]
    assert shopper.count("转人工") == 8  # every message kept


def test_sqlite_writers_of_one_process_queue_instead_of_meeting_a_locked_database(tmp_path: Path) -> None:
    # Given two stores of one SQLite file in one process whose connections do not wait at all for
    # SQLite's write lock (busy timeout 0: a writer that met the lock would fail at once, 503)
    url = f"sqlite:///{tmp_path / 'kefu.db'}"
    first, second = Store(url), Store(url)
    first.create_schema()
    for s in (first, second):
        sa.event.listen(s.engine, "connect", lambda conn, _: conn.execute("PRAGMA busy_timeout = 0"))
    sid = first.session_context(None)[0].id
    first.add_message(sid, "shopper", "在吗", new_session=True)
    done: list[str] = []
    # When one writes while 16 others of the process want to
    with first.tx(write=True) as s:
        s.execute(sa.text("UPDATE sessions SET fallbacks = 1 WHERE id = :id"), {"id": sid})
        writers = [threading.Thread(target=lambda i=i: done.append(
            (first if i % 2 else second).add_message(sid, "shopper", f"第{i}条").text)) for i in range(16)]
        for t in writers:
            t.start()
        for t in writers:
            t.join(0.05)  # they wait their turn meanwhile...
        assert not done and all(t.is_alive() for t in writers)
    for t in writers:
        t.join(30)
    # Then every one of them wrote once the first committed, none refused
    assert sorted(done) == sorted(f"第{i}条" for i in range(16))
    assert len(first.messages(sid)) == 17 and first.get_session(sid).fallbacks == 1
    first.close()
    second.close()


def test_queue_is_complete_whatever_the_history(store: Store) -> None:
    ids = [new_handoff(store)[1] for _ in range(230)]
    for hid in ids[:205]:
        store.resolve(hid, "alice", None, None)
    open_now = store.open_handoffs()
    assert [r.handoff.id for r in open_now] == ids[205:]
    assert [r.position for r in open_now] == list(range(1, 26))
    store.claim(ids[205], "bob")
    assert [r.handoff.id for r in store.open_handoffs("waiting")] == ids[206:]
    assert [(r.handoff.id, r.position) for r in store.open_handoffs("assigned")] == [(ids[205], None)]
    page = store.closed_handoffs(limit=100)
    assert [h.id for h in page] == ids[:205][::-1][:100]
    assert [h.id for h in store.closed_handoffs(limit=100, before=page[-1].id)] == ids[:205][::-1][100:200]


def test_the_queue_is_read_in_one_query(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store)
    for _ in range(40):
        new_handoff(store)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        for status in (None, "waiting", "assigned", "resolved"):
            conv.queue(status)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4


def test_a_refused_agent_reply_leaves_the_handoff_as_it_was(store: Store) -> None:
    _, hid = new_handoff(store)
    with pytest.raises(InvalidInputError):  # the database refuses a NUL (PostgreSQL) or a lone surrogate
        store.agent_reply(hid, "alice", "好的\ud800\u0000")
    h = store.get_handoff(hid)
    assert (h.status, h.agent) == ("waiting", None)
    store.agent_reply(hid, "alice", "好的，马上处理")
    with pytest.raises(ConflictError):
        store.agent_reply(hid, "bob", "我来")
    with pytest.raises(ConflictError):
        store.resolve(hid, "bob", None, None)
    h, msg = store.resolve(hid, "alice", "shipping.track", "查过了", system_text="机器人回来啦")
    assert (h.status, h.agent, msg.role if msg else None) == ("resolved", "alice", "system")
    with pytest.raises(ConflictError):
        store.resolve(hid, "alice", None, None)


def test_database_errors_are_the_cores_and_log_no_stored_values(store: Store,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """What the database refuses is a 422 and never a 500, and neither the error nor the log quotes
    the values (a shopper's phone number) that the statement carried."""
    sid = store.session_context(None)[0].id
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidInputError) as info:
        store.add_message(sid, "shopper", f"电话{PHONE}\ud800\u0000", new_session=True)
    assert PHONE not in str(info.value) and PHONE not in caplog.text
    assert store.messages(sid) == []


def test_a_long_chats_transcript_ends_with_its_latest_messages(store: Store) -> None:
    sid = store.session_context(None)[0].id
    store.add_message(sid, "shopper", "第0条", new_session=True)
    for n in range(1, 620):
        store.add_message(sid, "shopper", f"第{n}条")
    tail = store.messages(sid, limit=500, newest=True)
    assert [m.text for m in tail] == [f"第{n}条" for n in range(120, 620)]


def test_migration_closes_duplicate_open_handoffs_before_the_constraint(db_url: str) -> None:
    """A database from before 0002 may hold the duplicates the race made: the oldest open handoff
    of a session stays, the others are closed with a note; nothing is deleted."""
    store = Store(db_url)
    with store.engine.begin() as conn:
        _migrate_to(conn, "0001")
        conn.execute(sa.text("INSERT INTO sessions (id, created_at, updated_at, mode, fallbacks) "
                             "VALUES ('s1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'human', 0)"))
        for status in ("waiting", "assigned", "waiting", "resolved"):
            conn.execute(sa.text("INSERT INTO handoffs (session_id, status, reason, guesses, last_message, "
                                 "created_at) VALUES ('s1', :st, 'requested', '[]', 'x', CURRENT_TIMESTAMP)"),
                         {"st": status})
    store.create_schema()
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, status, note FROM handoffs ORDER BY id")).all()
    assert [r[1] for r in rows] == ["waiting", "resolved", "resolved", "resolved"]
    assert rows[1][2] == rows[2][2] == f"duplicate of handoff {rows[0][0]}, closed by migration 0002"
    store.close()


def test_migration_gives_the_stored_bot_messages_their_action(db_url: str) -> None:
    """Messages stored before 0004 kept what the bot did in `extra` only; the figures read a column."""
    store = Store(db_url)
    with store.engine.begin() as conn:
        _migrate_to(conn, "0003")
        conn.execute(sa.text("INSERT INTO sessions (id, created_at, updated_at, mode, fallbacks) "
                             "VALUES ('s1', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'bot', 0)"))
        for role, extra in (("shopper", None), ("bot", '{"action": "answer", "suggestions": []}'),
                            ("bot", '{"action": "suggest"}'), ("bot", None), ("agent", '{"action": "x"}')):
            conn.execute(sa.text("INSERT INTO messages (session_id, role, text, extra, created_at) "
                                 "VALUES ('s1', :role, 't', :extra, CURRENT_TIMESTAMP)"),
                         {"role": role, "extra": extra})
    store.create_schema()
    with store.engine.connect() as conn:
        actions = conn.execute(sa.text("SELECT action FROM messages ORDER BY id")).scalars().all()
    assert actions == [None, "answer", "suggest", None, None]
    store.close()


def test_the_migrations_build_exactly_the_tables_the_code_declares(store: Store) -> None:
    """Alembic's autogenerate finds nothing to add: every table, column and index of schema.py has
    its migration (a new table without one would exist in tests and be missing in a shop's database)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.service.schema import Base

    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
