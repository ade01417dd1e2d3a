"""The handoff story end to end over HTTP, against a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

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
    # While a person has the chat the bot stays silent; the agent sees the message.
    waiting = chat(server, "快点啊", sid)
    assert waiting["reply"] is None and waiting["route"] == "human"
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
