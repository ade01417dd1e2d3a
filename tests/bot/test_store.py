"""The store's schema set-up when several processes start at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from bot.store import Store


def _migrate(url: str) -> None:
    Store(url).create_schema()


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
