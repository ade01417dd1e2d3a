"""kefu as a Chatwoot inbox's Agent Bot: kefu's real server, Chatwoot's events sent as Chatwoot sends
them, and a fake Chatwoot that checks every request against the shapes of Chatwoot's source
(bot/integrations/chatwoot.py cites them)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import AGENT_TOKEN
from tests.integrations.peers import Peer, Seen, check, peer
from tests.server import Server

ACCOUNT, BOT_TOKEN, SECRET = 3, "cw-bot-token-0123", "cw-webhook-secret-0123"
MESSAGE_FIELDS = {"content", "message_type", "private", "content_type", "content_attributes"}
ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}


class FakeChatwoot:
    """Chatwoot's API as an agent bot sees it. The first request is answered 502 once (kefu must retry)."""

    def __init__(self) -> None:
        self.failed_once = False
        self._lock = threading.Lock()

    def __call__(self, seen: Seen) -> tuple[int, Any]:
        check(seen.method == "POST", f"method {seen.method}")
        parts = seen.path.split("/")
        check(len(parts) == 8 and parts[:5] == ["", "api", "v1", "accounts", str(ACCOUNT)]
              and parts[5] == "conversations" and parts[6].isdigit() and parts[7] in ("messages", "toggle_status"),
              f"path {seen.path}")
        check(seen.headers.get("api_access_token") == BOT_TOKEN, "api_access_token is not the bot's token")
        check(seen.headers.get("content-type", "").startswith("application/json"), "content-type is not JSON")
        body = seen.json()
        if parts[7] == "toggle_status":
            check(body == {"status": "open"}, f"toggle_status body {body}")
        else:
            self.message(body)
        with self._lock:
            first, self.failed_once = not self.failed_once, True
        if first:
            return 502, {"error": "bad gateway"}
        if parts[7] == "toggle_status":
            return 200, {"meta": {}, "payload": {"success": True, "current_status": "open"}}
        return 200, {"id": 1, "content": body["content"], "message_type": 1}

    @staticmethod
    def message(body: dict[str, Any]) -> None:
        check(set(body) <= MESSAGE_FIELDS, f"unknown fields {sorted(set(body) - MESSAGE_FIELDS)}")
        check(body.get("message_type") == "outgoing", f"message_type {body.get('message_type')}")
        check(isinstance(body.get("private"), bool), "private is not a boolean")
        check(isinstance(body.get("content"), str) and bool(body["content"].strip()), "no content")
        if "content_type" in body:
            check(body["content_type"] == "input_select" and not body["private"], "content_type")
            items = body.get("content_attributes", {}).get("items")
            check(set(body["content_attributes"]) == {"items"}, "content_attributes has more than items")
            check(isinstance(items, list) and len(items) > 0, "an input_select without items")
            for item in items:
                check(set(item) == {"title", "value"} and all(isinstance(v, str) and v for v in item.values()),
                      f"item {item}")
        else:
            check("content_attributes" not in body, "content_attributes without content_type")


def event(conversation: int, message: int, content: str, *, status: str = "pending", kind: str = "message_created",
          message_type: str = "incoming", **more: Any) -> dict[str, Any]:
    """An agent bot event as Chatwoot builds it (Message#webhook_data with `event`; the conversation as
    Conversations::EventDataPresenter#push_data), trimmed to a realistic few fields."""
    return {"event": kind, "id": message, "content": content, "created_at": "2026-11-27T10:00:00.000Z",
            "message_type": message_type, "content_type": "text", "content_attributes": {}, "source_id": None,
            "private": False, "sender": {"id": 41, "name": "顾客", "type": "contact"},
            "inbox": {"id": 7, "name": "网店"}, "account": {"id": ACCOUNT, "name": "小店"},
            "conversation": {"id": conversation, "inbox_id": 7, "status": status, "channel": "Channel::WebWidget",
                             "can_reply": True, "meta": {"sender": {"id": 41, "name": "顾客", "type": "contact"}},
                             "messages": [], "labels": [], "additional_attributes": {}, "custom_attributes": {}},
            **more}


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"content-type": "application/json", "X-Chatwoot-Timestamp": stamp,
            "X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Delivery": "3c1b6a2e-9d41-4f0e-8a57-1b2c3d4e5f60"}


@pytest.fixture()
def fake() -> Iterator[Peer]:
    with peer(FakeChatwoot()) as p:
        yield p


def start(models_dir: Path, tmp_path: Path, fake: Peer, **env: str) -> Server:
    return Server({"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
                   "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN}", "KEFU_CHATWOOT_URL": fake.url,
                   "KEFU_CHATWOOT_BOT_TOKEN": BOT_TOKEN, "KEFU_CHATWOOT_WEBHOOK_SECRET": SECRET, **env},
                  log=tmp_path / "server.log").start()


def to_conversation(seen: list[Seen], conversation: int) -> list[Seen]:
    return [s for s in seen if s.path.split("/")[6] == str(conversation)]


@pytest.mark.slow
def test_kefu_answers_hands_off_and_takes_back_a_chatwoot_conversation(
        models_dir: Path, tmp_path: Path, fake: Peer) -> None:
    srv = start(models_dir, tmp_path, fake)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            hook = f"/v1/integrations/chatwoot?token={SECRET}"
            raw = json.dumps(event(101, 1, "今天下单什么时候发货？")).encode()
            # Anything but Chatwoot is refused, with a JSON error, before the event is read
            for url, headers in [("/v1/integrations/chatwoot", {}), ("/v1/integrations/chatwoot?token=wrong-token", {}),
                                 ("/v1/integrations/chatwoot", signed(raw, secret="another-secret")),
                                 ("/v1/integrations/chatwoot", signed(raw, at=int(time.time()) - 3600))]:
                r = http.post(url, content=raw, headers={"content-type": "application/json", **headers})
                assert r.status_code == 401 and r.json()["error"] == "unauthorized", (url, r.text)
            # Events the bot must leave alone: a person has the conversation, the bot's own or an agent's
            # message, a private note, another event, an attachment without text
            for ignored in [event(101, 2, "在吗", status="open"), event(101, 3, "好的", message_type="outgoing"),
                            event(101, 4, "备注", private=True), {**event(101, 5, "x"), "event": "conversation_opened"},
                            event(101, 6, "")]:
                r = http.post(hook, json=ignored)
                assert r.status_code == 200 and r.json()["status"] == "ignored", r.text
            # When the contact asks a question in a pending conversation (the token in the bot's URL)
            r = http.post(hook, content=raw, headers={"content-type": "application/json"})
            assert r.json() == {"status": "answered", "action": "answer"}, r.text
            # ...and, signed as newer Chatwoot signs, asks for a person in another conversation
            complaint = json.dumps(event(102, 7, "我要投诉，收到的东西是坏的，电话13812345678")).encode()
            r = http.post("/v1/integrations/chatwoot", content=complaint, headers=signed(complaint))
            assert r.json() == {"status": "answered", "action": "handoff"}, r.text
            # Then Chatwoot gets the answer (after a retry), and for the handoff the reply, the handoff's
            # packet as a private note and the conversation opened for its agents, in that order
            seen = fake.wait_for(lambda got: len(got) == 5)
            tried, answer = to_conversation(seen, 101)  # the first try was answered 502: the same again
            assert tried.raw == answer.raw and answer.json()["private"] is False
            assert "content_type" not in answer.json() and "发货" in answer.json()["content"]
            reply, note, opened = to_conversation(seen, 102)
            assert (reply.json()["private"], note.json()["private"], opened.path.endswith("/toggle_status")) == (
                False, True, True)
            assert "原因：投诉" in note.json()["content"] and "机器人的猜测：" in note.json()["content"]
            assert "下一位" not in reply.json()["content"]  # no place in kefu's queue: Chatwoot has its own
            # ...and kefu's own queue shows the chat as Chatwoot's
            [h] = http.get("/v1/handoffs", headers=ALICE).json()["data"]
            assert (h["agent"], h["status"], h["reason"]) == ("chatwoot", "assigned", "complaint")
            # When Chatwoot gives the conversation back to the bot (pending again), the bot answers again
            r = http.post(hook, json=event(102, 8, "什么时候发货"))
            assert r.json() == {"status": "answered", "action": "answer"}, r.text
            assert http.get("/v1/handoffs", headers=ALICE).json()["data"] == []
            # ...and an event delivered twice is answered once
            assert http.post(hook, json=event(102, 8, "什么时候发货")).json()["status"] == "ignored"
            seen = fake.wait_for(lambda got: len(got) == 6)
            assert to_conversation(seen, 102)[-1].json()["content"] == answer.json()["content"]
            assert all("13812345678" not in s.raw.decode() for s in seen)
    finally:
        srv.stop()


@pytest.mark.slow
def test_quick_replies_are_an_input_select_and_a_pick_is_answered(
        models_dir: Path, tmp_path: Path, fake: Peer) -> None:
    # A bot never sure of an answer offers its likely entries instead (as tests/api/test_rasa.py does).
    srv = start(models_dir, tmp_path, fake, KEFU_POLICY__ANSWER="0.999", KEFU_POLICY__MARGIN="0.999",
                KEFU_POLICY__SUGGEST="0", KEFU_POLICY__HUMAN="1", KEFU_POLICY__HUMAN_CHAT="1")
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            hook = f"/v1/integrations/chatwoot?token={SECRET}"
            assert http.post(hook, json=event(201, 1, "什么时候发货")).json()["action"] == "suggest"
            [offer] = fake.wait_for(lambda got: len(got) == 2)[1:]  # the first try was answered 502
            items = offer.json()["content_attributes"]["items"]
            assert offer.json()["content_type"] == "input_select" and items[0]["value"] == items[0]["title"]
            # The shopper picks an option: Chatwoot updates the bot's message with the submitted value
            pick = event(201, 9, offer.json()["content"], kind="message_updated", message_type="outgoing",
                         content_type="input_select",
                         content_attributes={"items": items, "submitted_values": [items[0]]})
            assert http.post(hook, json=pick).json() == {"status": "answered", "action": "suggest"}
            # A third unsure turn goes to a person: note and toggle_status follow the reply
            r = http.post(hook, json=event(201, 10, "那个呢"))
            assert r.json() == {"status": "answered", "action": "handoff"}
            seen = fake.wait_for(lambda got: len(got) == 6)
            assert [s.path.rsplit("/", 1)[1] for s in seen[3:]] == ["messages", "messages", "toggle_status"]
            assert "多次没听懂" in seen[4].json()["content"]
    finally:
        srv.stop()


@pytest.mark.slow
def test_generated_events_never_break_the_endpoint(models_dir: Path, tmp_path: Path, fake: Peer) -> None:
    """Authenticated but arbitrary JSON: a JSON answer, never a 5xx (schemathesis, tests/fuzz, sees only 401s)."""
    srv = start(models_dir, tmp_path, fake)
    ids = st.one_of(st.integers(min_value=-2, max_value=2**64), st.text(max_size=3), st.none(), st.booleans())
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
    events = st.fixed_dictionaries({
        "event": st.sampled_from(["message_created", "message_updated", "conversation_opened", 1]),
        "id": ids, "content": st.one_of(st.text(max_size=60), scalars),
        "message_type": st.sampled_from(["incoming", "outgoing", 0, 1, None]),
        "content_type": st.sampled_from(["text", "input_select", None]),
        "content_attributes": st.one_of(scalars, st.fixed_dictionaries(
            {"submitted_values": st.lists(st.dictionaries(st.sampled_from(["title", "value"]), scalars), max_size=2)})),
        "account": st.one_of(scalars, st.fixed_dictionaries({"id": ids})),
        "conversation": st.one_of(scalars, st.fixed_dictionaries(
            {"id": ids, "status": st.sampled_from(["pending", "open", None])})),
    })
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            @given(body=st.one_of(events, scalars, st.lists(scalars, max_size=3)))
            @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check_one(body: Any) -> None:
                r = http.post(f"/v1/integrations/chatwoot?token={SECRET}", json=body)
                assert r.status_code in (200, 409, 422), (body, r.status_code, r.text[:300])
                assert r.headers["content-type"].startswith("application/json")

            check_one()
            r = http.post(f"/v1/integrations/chatwoot?token={SECRET}", content=b"[" * 5000,
                          headers={"content-type": "application/json"})
            assert r.status_code == 422 and r.json()["error"] == "invalid_input"
    finally:
        srv.stop()
    assert not fake.wrong
