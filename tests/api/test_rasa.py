"""Rasa's REST channel (api/routes/rasa.py) against a real server process, on SQLite and PostgreSQL:
the requests of a Rasa web widget and of Chatwoot's sample Rasa bridge, sent as they send them, and
the answers read as they read them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.routes.rasa import rasa_messages
from bot.dialogue.results import Reply
from bot.service.schema import Message
from tests.api.conftest import AGENT_TOKEN
from tests.server import Server

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
WEBHOOK = "/webhooks/rest/webhook"
PER_SESSION = 8
SHOP = "https://shop.example"  # the page the widget is on


@pytest.fixture()
def server(models_dir: Path, db_url: str, tmp_path: Path) -> Iterator[Server]:
    srv = Server({"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db_url,
                  "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN}", "KEFU_RATE_LIMIT_SESSION": str(PER_SESSION),
                  "KEFU_ALLOWED_ORIGINS": SHOP},
                 log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def widget_says(http: httpx.Client, sender: str, text: str) -> list[dict[str, Any]]:
    """What a Rasa REST web widget on the shop's page sends (Chatbot-Widget's jQuery: a JSON body
    {message, sender}, cross-origin, after the browser's preflight)."""
    preflight = http.options(WEBHOOK, headers={"Origin": SHOP, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == SHOP
    r = http.post(WEBHOOK, content=f'{{"message": {_js(text)}, "sender": "{sender}"}}',
                  headers={"Content-Type": "application/json; charset=UTF-8", "Accept": "*/*", "Origin": SHOP})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == SHOP
    items: list[dict[str, Any]] = r.json()
    assert items and all(i["recipient_id"] == sender and isinstance(i["text"], str) for i in items), items
    return items


def _js(text: str) -> str:
    return httpx.Request("POST", "http://x", json=text).content.decode()


def bridge_says(url: str, contact: int, message: str) -> str:
    """Chatwoot's sample Rasa bridge, send_to_bot: the contact's id (a number) as sender, and the
    answer read as r.json()[0]['text']."""
    data = {"sender": contact, "message": message}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    r = httpx.post(f"{url}/webhooks/rest/webhook", json=data, headers=headers, timeout=30)
    return str(r.json()[0]["text"])


def _refused(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json") and r.json()["error"]


def test_a_rasa_widget_and_the_chatwoot_bridge_talk_to_kefu_unchanged(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/webhooks/rest/").json() == {"status": "ok"}
        sender = str(uuid.uuid4())
        [answer] = widget_says(http, sender, "今天下单什么时候发货？")
        assert answer["text"] and "buttons" not in answer
        custom = answer["custom"]
        assert (custom["role"], custom["route"], custom["action"]) == ("bot", "faq", "answer")
        assert custom["intent"].startswith("shipping.") and 0 < custom["confidence"] <= 1
        assert custom["handoff"] is None and custom["reason"] is None and custom["message_id"] > 0

        # Chatwoot's bridge: a contact's number as sender, the first item's text as the answer.
        text = bridge_says(server.url, 42, "可以退货吗")
        assert text and text != answer["text"]
        assert http.post(WEBHOOK, json={"sender": "42", "message": "在吗"}).json()[0]["recipient_id"] == "42"

        # Rasa's optional metadata, and fields Rasa does not read either, are accepted.
        extra = {"sender": sender, "message": "包邮吗", "metadata": {"page": "/item/1"}, "input_channel": "web"}
        assert http.post(WEBHOOK, json=extra).json()[0]["custom"]["action"] == "answer"

        # Bad input: the same refusals as /v1/chat, as JSON.
        for bad in ({"message": "你好"}, {"sender": sender}, {"sender": "", "message": "你好"},
                    {"sender": "x" * 257, "message": "你好"}, {"sender": True, "message": "你好"},
                    {"sender": 1.5, "message": "你好"}, {"sender": sender, "message": 3},
                    {"sender": sender, "message": "   "}, {"sender": sender, "message": "坏\x00"},
                    {"sender": sender, "message": "长" * 1001}, {"sender": sender, "message": "好", "metadata": []}):
            _refused(http.post(WEBHOOK, json=bad), 422)
        cut = b'{"sender": "a", "message": '
        _refused(http.post(WEBHOOK, content=cut, headers={"content-type": "application/json"}), 422)
        _refused(http.post(WEBHOOK, json={"sender": sender, "message": "好", "metadata": {"x": "y" * 20_000}}), 413)
        _refused(http.get(WEBHOOK), 405)

        # A sender is no session id: kefu's own routes reach neither its chat nor a session of that name.
        _refused(http.get(f"/v1/chat/{sender}/messages"), 404)
        _refused(http.post("/v1/chat", json={"session_id": sender, "message": "你好"}), 404)
        handoffs = http.get("/v1/handoffs", headers=ALICE).json()["data"]
        assert handoffs == []

        # The per-session limit counts each sender's messages (429 with Retry-After, as /v1/chat).
        loud = str(uuid.uuid4())
        for _ in range(PER_SESSION):
            assert http.post(WEBHOOK, json={"sender": loud, "message": "运费多少"}).status_code == 200
        limited = http.post(WEBHOOK, json={"sender": loud, "message": "运费多少"})
        _refused(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        assert http.post(WEBHOOK, json={"sender": sender, "message": "运费多少"}).status_code == 200


def test_a_sender_keeps_its_chat_through_a_handoff_and_hears_the_agent(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        sender, stranger = str(uuid.uuid4()), str(uuid.uuid4())
        [handed] = widget_says(http, sender, "转人工")
        assert (handed["custom"]["route"], handed["custom"]["reason"]) == ("human", "requested")
        hid = handed["custom"]["handoff"]["id"]
        [queued] = http.get("/v1/handoffs", headers=ALICE).json()["data"]
        assert queued["id"] == hid and queued["session_id"].startswith("rasa:")
        _refused(http.get(f"/v1/chat/{queued['session_id']}/messages"), 422)  # no route reaches that chat

        # Another sender is another chat: the bot answers it.
        assert widget_says(http, stranger, "什么时候发货")[0]["custom"]["action"] == "answer"

        # The agent has the chat: the bot is silent, and still answers with one item.
        assert http.post(f"/v1/handoffs/{hid}/claim", headers=ALICE).status_code == 200
        [silent] = widget_says(http, sender, "我的快递一直没到")
        assert silent["text"] == "" and silent["custom"]["route"] == "human"
        assert silent["custom"]["handoff"]["id"] == hid

        # What the agent wrote meanwhile comes with the sender's next message, once.
        for line in ("您好，我是客服小李", "已经帮您催快递了"):
            assert http.post(f"/v1/handoffs/{hid}/messages", json={"text": line}, headers=ALICE).status_code == 200
        heard = widget_says(http, sender, "好的谢谢")
        assert [(i["text"], i["custom"]["role"]) for i in heard] == [("您好，我是客服小李", "agent"),
                                                                      ("已经帮您催快递了", "agent")]
        assert widget_says(http, sender, "还在吗")[0]["text"] == ""
        detail = http.get(f"/v1/handoffs/{hid}", headers=ALICE).json()
        assert [m["text"] for m in detail["transcript"] if m["role"] == "shopper"] == [
            "转人工", "我的快递一直没到", "好的谢谢", "还在吗"]

        # The agent ends the chat: the sender hears so, and the bot answers again.
        assert http.post(f"/v1/handoffs/{hid}/resolve", json={}, headers=ALICE).status_code == 200
        back = widget_says(http, sender, "什么时候发货")
        assert [i["custom"]["role"] for i in back] == ["system", "bot"]
        assert back[1]["custom"]["action"] == "answer" and back[1]["custom"]["handoff"] is None


def test_unsure_replies_come_as_rasa_buttons(models_dir: Path, tmp_path: Path) -> None:
    # A bot never sure of an answer offers its likely entries instead.
    srv = Server({"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
                  "KEFU_POLICY__ANSWER": "0.999", "KEFU_POLICY__MARGIN": "0.999", "KEFU_POLICY__SUGGEST": "0",
                  "KEFU_POLICY__HUMAN": "1", "KEFU_POLICY__HUMAN_CHAT": "1", "KEFU_ALLOWED_ORIGINS": SHOP},
                 log=tmp_path / "server.log").start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            sender = str(uuid.uuid4())
            [offer] = widget_says(http, sender, "什么时候发货")
            assert offer["custom"]["action"] == "suggest" and offer["text"]
            titles = [s["title"] for s in offer["custom"]["suggestions"]]
            assert titles and offer["buttons"] == [{"title": t, "payload": t} for t in titles]
            # A widget sends a button's payload as the next message, in the same chat: its third unsure
            # turn in a row goes to a person.
            [then] = widget_says(http, sender, offer["buttons"][0]["payload"])
            assert then["custom"]["action"] == "suggest" and then["buttons"]
            [third] = widget_says(http, sender, "那个呢")
            assert (third["custom"]["route"], third["custom"]["reason"]) == ("human", "repeated_fallback")
    finally:
        srv.stop()


def test_a_reply_is_split_at_blank_lines_as_rasa_splits_it() -> None:
    reply = Reply("faq", "suggest", "size.chart", 0.5, "  第一段\n第一段还有\n\n第二段\n\n\n\n第三段\n", message_id=9,
                  suggestions=[{"intent": "size.chart", "title": "尺码表"}])
    agent = Message(id=7, role="agent", text="您好\n\n请稍等")
    items = rasa_messages("s1", reply, [agent])
    assert [(i["text"], i["custom"]["role"]) for i in items] == [
        ("您好", "agent"), ("请稍等", "agent"), ("第一段\n第一段还有", "bot"), ("第二段", "bot"), ("第三段", "bot")]
    assert [i.get("buttons") for i in items] == [None] * 4 + [[{"title": "尺码表", "payload": "尺码表"}]]
    assert all(i["recipient_id"] == "s1" and i["custom"]["intent"] == "size.chart" for i in items)
    assert rasa_messages("s1", Reply("human", "handoff", None, 0.0, None), []) == [
        {"recipient_id": "s1", "text": "", "custom": {"route": "human", "action": "handoff", "intent": None,
                                                       "confidence": 0.0, "suggestions": [], "handoff": None,
                                                       "reason": None, "role": "bot", "message_id": 0}}]
