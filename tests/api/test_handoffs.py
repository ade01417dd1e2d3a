"""The handoff story end to end over HTTP, against a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from bot.service.schema import ChatSession, Handoff, Message
from bot.service.store import Store
from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.server import ROOT, Server

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
BOB = {"Authorization": f"Bearer {OTHER_TOKEN}"}


@pytest.fixture()
def env(models_dir: Path, db_url: str) -> dict[str, str]:
    return {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db_url,
            "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN}"}


@pytest.fixture()
def server(env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


class EventReader:
    """Reads a server-sent event stream in a thread and keeps the parsed events."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.ready = threading.Event()
        self._cond = threading.Condition()
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=60))
        self._thread = threading.Thread(target=self._run, args=(url, headers or {}), daemon=True)
        self._thread.start()
        assert self.ready.wait(15), "event stream did not open"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        event = "message"
        try:
            with self._client.stream("GET", url, headers=headers) as r:
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        with self._cond:
                            self.events.append((event, json.loads(line[5:].strip() or "{}")))
                            self._cond.notify_all()
                        if event == "ready":
                            self.ready.set()
        except httpx.HTTPError:
            pass

    def wait_for(self, kind: str, timeout: float = 15) -> dict[str, Any]:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(k == kind for k, _ in self.events), timeout)
            assert ok, f"no '{kind}' event; got {self.events}"
            found = next(d for k, d in self.events if k == kind)
            self.events.remove((kind, found))
            return found

    def close(self) -> None:
        self._client.close()


def chat(srv: Server, message: str, session_id: str | None = None) -> dict[str, Any]:
    r = httpx.post(srv.url + "/v1/chat", json={"session_id": session_id, "message": message}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_the_whole_story(server: Server, env: dict[str, str]) -> None:
    # A shopper asks an FAQ question: the bot answers.
    first = chat(server, "今天下单什么时候发货呀")
    sid = first["session_id"]
    assert (first["route"], first["intent"]) == ("faq", "shipping.when")
    agents = EventReader(server.url + "/v1/agent/events", ALICE)
    # The shopper complains: a handoff with its reason and the bot's guesses.
    complaint = chat(server, "等了五天还没发货，你们到底怎么回事，我要投诉", sid)
    assert (complaint["route"], complaint["reason"]) == ("human", "complaint")
    hid = complaint["handoff"]["id"]
    assert complaint["handoff"]["status"] == "waiting" and "人工" in complaint["reply"]
    # The agent sees it on the event stream and in the queue.
    assert agents.wait_for("handoff")["handoff"]["id"] == hid
    queue = httpx.get(server.url + "/v1/handoffs?status=waiting", headers=ALICE).json()
    assert [h["id"] for h in queue["data"]] == [hid]
    detail = httpx.get(server.url + f"/v1/handoffs/{hid}", headers=ALICE).json()
    assert detail["reason"] == "complaint" and len(detail["guesses"]) == 3
    assert detail["last_message"] == "等了五天还没发货，你们到底怎么回事，我要投诉"
    assert [m["role"] for m in detail["transcript"]] == ["shopper", "bot", "shopper", "bot"]
    # While the shopper waits, what the bot cannot answer is acknowledged (once a burst); the agent sees it.
    waiting = chat(server, "快点啊", sid)
    assert (waiting["route"], waiting["action"]) == ("human", "ack") and waiting["reply"].startswith("已收到")
    assert agents.wait_for("message")["message"]["text"] == "快点啊"
    # The agent claims it; a second agent cannot.
    assert httpx.post(server.url + f"/v1/handoffs/{hid}/claim", headers=ALICE).json()["status"] == "assigned"
    again = httpx.post(server.url + f"/v1/handoffs/{hid}/claim", headers=BOB)
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    # The agent replies; the shopper receives it on the stream and in the history.
    shopper = EventReader(server.url + f"/v1/chat/{sid}/events")
    r = httpx.post(server.url + f"/v1/handoffs/{hid}/messages", headers=ALICE,
                   json={"text": "亲，非常抱歉，马上帮您催"})
    assert r.status_code == 200
    assert shopper.wait_for("message")["message"]["text"] == "亲，非常抱歉，马上帮您催"
    history = httpx.get(server.url + f"/v1/chat/{sid}/messages", params={"after": r.json()["id"] - 1}).json()
    assert [(m["role"], m["author"]) for m in history["messages"]] == [("agent", "alice")]
    # Resolved with a label, the bot answers the next question again.
    bob_resolve = httpx.post(server.url + f"/v1/handoffs/{hid}/resolve", headers=BOB, json={"label": "shipping.when"})
    assert bob_resolve.status_code == 409
    done = httpx.post(server.url + f"/v1/handoffs/{hid}/resolve", headers=ALICE,
                      json={"label": "shipping.when", "note": "催了仓库"})
    assert done.json()["status"] == "resolved" and done.json()["label"] == "shipping.when"
    after = chat(server, "可以货到付款吗", sid)
    assert (after["route"], after["intent"]) == ("faq", "payment.cod")
    agents.close()
    shopper.close()
    # The label becomes training data.
    out = subprocess.run([sys.executable, "-m", "training", "export-labels"], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=120, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {"text": "等了五天还没发货，你们到底怎么回事，我要投诉", "faq": ["shipping.when"]} in rows


def test_agent_endpoints_need_a_valid_token(server: Server) -> None:
    for method, path in [("GET", "/v1/handoffs"), ("GET", "/v1/handoffs/1"), ("POST", "/v1/handoffs/1/claim"),
                         ("POST", "/v1/handoffs/1/resolve"), ("GET", "/v1/agent/events")]:
        missing = httpx.request(method, server.url + path)
        wrong = httpx.request(method, server.url + path, headers={"Authorization": "Bearer not-a-real-token"})
        assert missing.status_code == 401 and missing.json()["error"] == "unauthorized", path
        assert wrong.status_code == 403 and wrong.json()["error"] == "forbidden", path
    # A shopper's session id is not an agent token.
    sid = chat(server, "在吗")["session_id"]
    assert httpx.get(server.url + "/v1/handoffs", headers={"Authorization": f"Bearer {sid}"}).status_code == 403


def test_unknown_ids_and_bad_bodies_are_json_errors(server: Server) -> None:
    assert httpx.get(server.url + "/v1/handoffs/999999", headers=ALICE).status_code == 404
    assert httpx.post(server.url + "/v1/handoffs/999999/claim", headers=ALICE).status_code == 404
    assert httpx.get(server.url + "/v1/handoffs/abc", headers=ALICE).status_code == 422
    assert httpx.get(server.url + "/v1/handoffs?status=lost", headers=ALICE).status_code == 422
    assert httpx.get(server.url + "/v1/chat/not-a-session/messages").status_code == 404
    hid = chat(server, "转人工")["handoff"]["id"]
    empty = httpx.post(server.url + f"/v1/handoffs/{hid}/messages", headers=ALICE, json={"text": "  "})
    bad_label = httpx.post(server.url + f"/v1/handoffs/{hid}/resolve", headers=ALICE, json={"label": "no.such"})
    assert empty.status_code == 422 and bad_label.status_code == 422 and bad_label.json()["message"]


def test_killed_server_loses_no_acknowledged_message(env: dict[str, str], tmp_path: Path) -> None:
    srv = Server(env, log=tmp_path / "server.log").start()
    acked: list[tuple[str, str]] = []
    handoffs = []
    for i in range(20):
        text = f"转人工 {i}" if i % 5 == 0 else f"什么时候发货 {i}"
        body = chat(srv, text)
        acked.append((body["session_id"], text))
        if body["handoff"]:
            handoffs.append(body["handoff"]["id"])
    srv.kill()
    again = Server(env, log=tmp_path / "server2.log").start()
    try:
        for sid, text in acked:
            msgs = httpx.get(again.url + f"/v1/chat/{sid}/messages").json()["messages"]
            assert msgs[0]["text"] == text and msgs[1]["role"] == "bot"
        queue = httpx.get(again.url + "/v1/handoffs", headers=ALICE).json()["data"]
        assert sorted(h["id"] for h in queue) == sorted(handoffs) and len(handoffs) == 4
    finally:
        again.stop()


def _resolved_history(db_url: str, n: int) -> list[int]:
    """`n` resolved handoffs, each with its session and the shopper's message, inserted in three
    statements (a shop's history, not chats through HTTP): the i-th handed off n - i minutes ago, a
    complaint every 100th, bob's every 20th (alice's otherwise); their ids, oldest first."""
    store = Store(db_url)
    now = dt.datetime.now(dt.UTC)
    sessions = [f"history-{i:05d}" for i in range(n)]
    said = {1234: "我的羊毛大衣起球了，能换一件吗", 2345: "说好的打50%的折扣呢"}
    try:
        with store.tx(write=True) as s:
            s.execute(insert(ChatSession), [{"id": sid, "created_at": now, "updated_at": now, "mode": "bot",
                                             "fallbacks": 0} for sid in sessions])
            s.execute(insert(Message), [{"session_id": sid, "role": "shopper", "text": said.get(i, f"订单{i}还没到"),
                                         "created_at": now - dt.timedelta(minutes=n - i)}
                                        for i, sid in enumerate(sessions)])
            s.execute(insert(Handoff), [{"session_id": sid, "status": "resolved", "guesses": [],
                                         "reason": "complaint" if i % 100 == 0 else "requested",
                                         "last_message": "转人工", "agent": "bob" if i % 20 == 0 else "alice",
                                         "created_at": now - dt.timedelta(minutes=n - i),
                                         "resolved_at": now} for i, sid in enumerate(sessions)])
            rows = s.execute(select(Handoff.id).where(Handoff.session_id.in_(sessions)).order_by(Handoff.id))
            return [r[0] for r in rows]
    finally:
        store.close()


def queue(srv: Server, **params: Any) -> dict[str, Any]:
    r = httpx.get(srv.url + "/v1/handoffs", params=params, headers=ALICE, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_queue_with_thousands_resolved_behind_it(server: Server, db_url: str) -> None:
    # Given a shop's history of 3,000 resolved handoffs, and four open ones (bob has one).
    ids = _resolved_history(db_url, 3000)
    texts = ("转人工", "等了五天还没发货，你们到底怎么回事，我要投诉", "人工客服", "转人工")
    open_ids = [chat(server, text)["handoff"]["id"] for text in texts]
    httpx.post(server.url + f"/v1/handoffs/{open_ids[1]}/claim", headers=BOB).raise_for_status()
    # Then every open one is listed, oldest first, waiting ones with their place.
    now_open = queue(server)["data"]
    assert [(h["id"], h["status"], h.get("position")) for h in now_open] == [
        (open_ids[0], "waiting", 1), (open_ids[1], "assigned", None), (open_ids[2], "waiting", 2),
        (open_ids[3], "waiting", 3)]
    # And the resolved ones page newest first, each exactly once, with a cursor to the next page.
    seen, before, pages = [], None, 0
    while True:
        page = queue(server, status="resolved", limit=200, **({"before": before} if before else {}))
        seen += [h["id"] for h in page["data"]]
        pages += 1
        if page["next"] is None:
            break
        assert page["next"] == page["data"][-1]["id"]
        before = page["next"]
    assert seen == ids[::-1] and pages == 16  # the 16th is empty: 3,000 is 15 pages of 200
    # Search in Chinese text finds the chat by what the shopper said; a % is only a character.
    assert [h["id"] for h in queue(server, status="resolved", q="羊毛大衣")["data"]] == [ids[1234]]
    assert [h["id"] for h in queue(server, status="resolved", q="50%")["data"]] == [ids[2345]]
    assert queue(server, status="resolved", q="没有这句话")["data"] == []
    # Filters by reason, agent and age narrow the resolved pages and the open queue alike.
    complaints = queue(server, status="resolved", reason="complaint", limit=200)["data"]
    assert [h["id"] for h in complaints] == ids[2900::-100]
    bobs = queue(server, status="resolved", agent="bob", limit=200)["data"]
    assert [h["id"] for h in bobs] == ids[2980::-20] and {h["agent"] for h in bobs} == {"bob"}
    old = queue(server, status="resolved", older_than_minutes=2000, limit=10)["data"]
    assert [h["id"] for h in old] == ids[1000::-1][:10]
    assert [h["id"] for h in queue(server, reason="complaint")["data"]] == [open_ids[1]]
    assert [h["id"] for h in queue(server, agent="bob")["data"]] == [open_ids[1]]
    assert queue(server, older_than_minutes=60)["data"] == []
    assert [h["id"] for h in queue(server, status="waiting", q="人工客服")["data"]] == [open_ids[2]]


@pytest.mark.parametrize("params", [
    {"reason": "lost"}, {"older_than_minutes": "-1"}, {"older_than_minutes": "9" * 30}, {"q": ""},
    {"q": "长" * 101}, {"agent": ""}, {"agent": "a" * 65}, {"limit": "0"}, {"before": "0"},
])
def test_bad_queue_parameters_are_422(server: Server, params: dict[str, str]) -> None:
    r = httpx.get(server.url + "/v1/handoffs", params={"status": "resolved", **params}, headers=ALICE)
    assert r.status_code == 422 and r.json()["error"], r.text


def test_the_queue_shows_who_wrote_last_and_what(server: Server) -> None:
    # Given a handoff: the shopper waits for a person from the message that was handed off.
    first = chat(server, "等了五天还没发货，你们到底怎么回事，我要投诉")
    sid, hid = first["session_id"], first["handoff"]["id"]

    def mine() -> dict[str, Any]:
        return next(h for h in queue(server)["data"] if h["id"] == hid)

    handed = mine()
    assert handed["waiting_since"] == handed["created_at"]
    # When the shopper writes again, that is the queue's last message; the wait still runs from the first.
    chat(server, "有人吗？", sid)
    assert mine()["last_message"] == "有人吗？" and mine()["waiting_since"] == handed["created_at"]
    # The agent's reply ends the wait...
    httpx.post(server.url + f"/v1/handoffs/{hid}/messages", headers=ALICE, json={"text": "亲，在的"}).raise_for_status()
    assert mine()["waiting_since"] is None and mine()["last_message"] == "有人吗？"
    detail = httpx.get(server.url + f"/v1/handoffs/{hid}", headers=ALICE).json()
    assert detail["waiting_since"] is None
    # ...and the shopper's next message starts a new one, from that message.
    chat(server, "照片发给你了", sid)
    history = httpx.get(server.url + f"/v1/chat/{sid}/messages").json()["messages"]
    assert mine()["waiting_since"] == history[-1]["created_at"] and mine()["last_message"] == "照片发给你了"
    detail = httpx.get(server.url + f"/v1/handoffs/{hid}", headers=ALICE).json()
    assert detail["waiting_since"] == history[-1]["created_at"]
    # A resolved handoff waits for nobody.
    httpx.post(server.url + f"/v1/handoffs/{hid}/resolve", headers=ALICE).raise_for_status()
    assert httpx.get(server.url + f"/v1/handoffs/{hid}", headers=ALICE).json()["waiting_since"] is None
