"""POST /v1/chat: answers in Chinese, keeps the session, and refuses bad input with JSON."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bot.config import PolicySettings
from tests.api.conftest import make_settings

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_healthz_reports_the_model(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["model"]


def test_faq_question_is_answered_in_chinese(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"message": "今天下单什么时候能发货呀"})
    body = r.json()
    assert r.status_code == 200
    assert body["route"] == "faq" and body["intent"] == "shipping.when"
    assert CJK.search(body["reply"]) and "亲" in body["reply"]
    assert body["handoff"] is None
    assert len(body["session_id"]) >= 32


def test_session_keeps_its_turns(client: TestClient) -> None:
    first = client.post("/v1/chat", json={"message": "在吗"}).json()
    second = client.post("/v1/chat", json={"session_id": first["session_id"], "message": "可以货到付款吗"}).json()
    assert second["session_id"] == first["session_id"]
    history = client.get(f"/v1/chat/{first['session_id']}/messages").json()["messages"]
    assert [m["role"] for m in history] == ["shopper", "bot", "shopper", "bot"]
    assert history[2]["text"] == "可以货到付款吗"


def test_complaint_hands_off_with_reason(client: TestClient) -> None:
    body = client.post("/v1/chat", json={"message": "你们这什么垃圾服务，我要投诉"}).json()
    assert body["route"] == "human" and body["intent"] == "human.complaint" and body["reason"] == "complaint"
    assert body["handoff"]["status"] == "waiting" and body["handoff"]["position"] >= 1
    assert "人工" in body["reply"]


def test_repeated_fallback_hands_off(models_dir: Path, tmp_path: Path) -> None:
    # Given thresholds in config so strict that the bot is never sure, nor sure it is a person's job
    settings = make_settings(models_dir, f"sqlite:///{tmp_path / 'k.db'}")
    settings.policy = PolicySettings(answer=0.999, margin=0.999, suggest=1.0, human=1.0, human_chat=1.0)
    with TestClient(create_app(settings)) as c:
        # When the shopper asks three times
        sid, replies = None, []
        for text in ("请问那个东西怎么弄", "就是那个嘛", "那个啊"):
            body = {"message": text} if sid is None else {"session_id": sid, "message": text}
            replies.append(c.post("/v1/chat", json=body).json())
            sid = replies[-1]["session_id"]
    # Then the bot offers what it thinks likely (or asks to rephrase) twice, and then hands off
    for r in replies[:2]:
        assert r["route"] == "faq" and r["handoff"] is None and (r["suggestions"] or "换个说法" in r["reply"]), r
    assert (replies[2]["route"], replies[2]["reason"]) == ("human", "repeated_fallback")
    assert replies[2]["handoff"]["status"] == "waiting"


def test_unknown_session_is_404_json(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"session_id": "nope", "message": "在吗"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"


# fmt: off
@pytest.mark.parametrize("payload", [
    {"message": ""},
    {"message": "   \n\t "},
    {"message": "好" * 1001},
    {"message": 123},
    {"message": None},
    {"message": ["在吗"]},
    {"session_id": 5, "message": "在吗"},
    {},
    {"message": "在吗", "extra": 1},
])
# fmt: on
def test_bad_input_is_a_json_4xx(client: TestClient, payload: object) -> None:
    r = client.post("/v1/chat", json=payload)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request" and r.json()["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[]", b"\"text\""])
def test_body_that_is_not_a_json_object_is_a_json_4xx(client: TestClient, raw: bytes) -> None:
    r = client.post("/v1/chat", content=raw, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert r.json()["error"]


def test_message_of_exactly_1000_characters_is_accepted(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"message": "请问什么时候发货" + "好" * 992})
    assert r.status_code == 200


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/v1/chat" in client.get("/openapi.json").json()["paths"]
