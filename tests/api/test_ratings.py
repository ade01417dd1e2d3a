"""Shoppers rate over HTTP (有帮助 / 没帮助, 1-5 after an agent), and the manager reads the figures,
against a real server process on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN
from tests.server import Server

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
ADMIN_TOKEN = "admin-token-ratings-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ORDER_TOKEN = "checkout-token-0123456789"
CHECKOUT = {"Authorization": f"Bearer {ORDER_TOKEN}"}


@pytest.fixture()
def server(models_dir: Path, db_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = Server({"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db_url,
                  "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN}", "KEFU_ADMIN_TOKEN": ADMIN_TOKEN,
                  "KEFU_ORDER_TOKEN": ORDER_TOKEN},
                 log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def _refused(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json") and r.json()["error"]


def test_a_shopper_rates_an_answer_and_the_agent_and_the_manager_sees_it(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        first = http.post("/v1/chat", json={"message": "什么时候发货"}).json()
        assert first["action"] == "answer"
        sid, answer = first["session_id"], first["message_id"]
        other = http.post("/v1/chat", json={"message": "包邮吗"}).json()

        fb = f"/v1/chat/{sid}/feedback"
        assert http.post(fb, json={"message_id": answer, "helpful": False}).json() == {"message_id": answer,
                                                                                        "helpful": False}
        assert http.post(fb, json={"message_id": answer, "helpful": True}).json()["helpful"] is True  # changed
        _refused(http.post(fb, json={"message_id": other["message_id"], "helpful": True}), 404)  # not this chat's
        _refused(http.post(fb, json={"message_id": answer - 1, "helpful": True}), 422)  # the shopper's own message
        _refused(http.post(f"/v1/chat/{'x' * 43}/feedback", json={"message_id": answer, "helpful": True}), 404)
        for bad in ({"message_id": answer, "helpful": "yes"}, {"message_id": 0, "helpful": True},
                    {"message_id": str(answer), "helpful": True}, {"message_id": answer},
                    {"message_id": answer, "helpful": True, "score": 5}):
            _refused(http.post(fb, json=bad), 422)

        rating = f"/v1/chat/{sid}/rating"
        _refused(http.post(rating, json={"score": 5}), 409)  # nobody served them yet
        handed = http.post("/v1/chat", json={"session_id": sid, "message": "转人工"}).json()
        hid = handed["handoff"]["id"]
        _refused(http.post(rating, json={"score": 5}), 409)  # still waiting
        reply = http.post(f"/v1/handoffs/{hid}/messages", json={"text": "您好，我来帮您看"}, headers=ALICE)
        assert reply.status_code == 200
        assert http.post(f"/v1/handoffs/{hid}/resolve", json={}, headers=ALICE).status_code == 200
        for bad in ({"score": 0}, {"score": 6}, {"score": "5"}, {"score": 4.5}, {"comment": "好"},
                    {"score": 4, "comment": "坏\x00"}):
            _refused(http.post(rating, json=bad), 422)
        assert http.post(rating, json={"score": 5, "comment": "很快"}).json() == {"handoff_id": hid, "score": 5,
                                                                                "comment": "很快"}
        _refused(http.post(rating, json={"score": 1}), 409)  # once per conversation with an agent

        # The shop's checkout reports the order the chat led to; a retry changes nothing.
        order = {"session_id": sid, "order_id": "TB-20261127-0001", "amount": 129.9}
        _refused(http.post("/v1/orders", json=order), 401)
        _refused(http.post("/v1/orders", json=order, headers=ADMIN), 403)
        made = http.post("/v1/orders", json=order, headers=CHECKOUT)
        assert made.status_code == 201 and made.json()["new"] is True and made.json()["amount"] == "129.90"
        again = http.post("/v1/orders", json=order, headers=CHECKOUT)
        assert again.status_code == 200 and again.json()["new"] is False and again.json()["at"] == made.json()["at"]
        _refused(http.post("/v1/orders", json={**order, "amount": 1}, headers=CHECKOUT), 409)
        _refused(http.post("/v1/orders", json={**order, "order_id": "X-2", "session_id": "y" * 43},
                           headers=CHECKOUT), 404)
        for bad in ({**order, "amount": -1}, {**order, "amount": 1.005}, {**order, "order_id": "TB 1"},
                    {**order, "at": "2026-11-27T10:00:00"}, {**order, "coupon": "x"}, {"session_id": sid}):
            _refused(http.post("/v1/orders", json=bad, headers=CHECKOUT), 422)

        _refused(http.get("/v1/admin/stats"), 401)
        _refused(http.get("/v1/admin/stats", headers=ALICE), 403)
        stats = http.get("/v1/admin/stats", headers=ADMIN).json()  # the last 7 days, today included
        assert (stats["conversations"], stats["handed_off"], stats["containment_rate"]) == (2, 1, 0.5)
        assert stats["handoff_reasons"]["requested"] == 1
        assert stats["feedback"] == {"helpful": 1, "unhelpful": 0}
        assert stats["ratings"]["5"] == 1 and stats["satisfaction_rate"] == 1.0
        assert {"intent": "shipping.when", "answered": 1, "helpful": 1, "unhelpful": 0} in stats["intents"]
        assert [(a["agent"], a["handled"], a["within_180s_rate"]) for a in stats["agents"]] == [("alice", 1, 1.0)]
        assert (stats["orders"], stats["order_amount"], stats["conversion_rate"]) == (1, 129.9, 0.5)
        assert stats["conversion"]["handed_off"] == {"conversations": 1, "converted": 1, "rate": 1.0}
        assert len(stats["days"]) == 7 and stats["days"][-1]["conversations"] == 2
        today = stats["to"]
        assert http.get("/v1/admin/stats", params={"from": today, "to": today}, headers=ADMIN).json()["days"] == \
            stats["days"][-1:]
        for bad in ({"from": "2026-13-01"}, {"from": "yesterday"}, {"to": "2026-02-30"},
                    {"from": "2026-11-27", "to": "2026-11-01"}, {"from": "2020-01-01", "to": "2026-01-01"}):
            _refused(http.get("/v1/admin/stats", params=bad, headers=ADMIN), 422)
