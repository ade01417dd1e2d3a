"""`kefu stats`: the shop's figures in the terminal, and as JSON, read from the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.config import get_settings
from bot.figures import analytics
from bot.service.store import Store
from tests.conftest import DATA
from tests.history import Clock, Shop, play_the_day
from training.cli import app


@pytest.fixture()
def played(clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'kefu.db'}")
    store.create_schema()
    play_the_day(Shop(store, clock), clock)
    monkeypatch.setenv("KEFU_DATABASE_URL", store.url)
    monkeypatch.setenv("KEFU_DATA_DIR", str(DATA))
    get_settings.cache_clear()
    yield store
    store.close()
    get_settings.cache_clear()


def test_stats_json_is_the_apis_figures(played: Store) -> None:
    result = CliRunner().invoke(app, ["stats", "--from", "2026-11-26", "--to", "2026-11-26", "--json"])
    assert result.exit_code == 0, result.output
    expected = analytics.stats(played, analytics.period("2026-11-26", "2026-11-26", "Asia/Shanghai"))
    assert json.loads(result.stdout) == expected and expected["conversations"] == 6


def test_stats_prints_the_headline_figures(played: Store) -> None:
    result = CliRunner().invoke(app, ["stats", "--from", "2026-11-25", "--to", "2026-11-26"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("2026-11-25 .. 2026-11-26 (Asia/Shanghai)")
    assert "接待量 conversations 7, 转人工 handed off 3, 自助解决率 containment 57.1%" in out
    assert "agent alice: handled 1, first reply p50 150.0 s, 3分钟回复率 100.0%" in out
    assert "  2026-11-25: 2 conversations, 0 handed off, 100.0% contained" in out


def test_a_bad_date_is_an_error_not_a_traceback(played: Store) -> None:
    result = CliRunner().invoke(app, ["stats", "--from", "yesterday"])
    assert result.exit_code == 1 and "'from' must be a date as YYYY-MM-DD" in result.output
