"""The conversation service on a real SQLite store: queue, service hours, labels, webhook."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.conversation import Conversations
from bot.errors import ConflictError, NotFoundError
from bot.store import Store
from bot.webhook import SIGNATURE_HEADER, WebhookNotifier


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'k.db'}")
    s.create_schema()
    return s


def at(hour: int) -> dt.datetime:
    """A moment at `hour` o'clock in the shop's time zone (Asia/Shanghai, UTC+8)."""
    return dt.datetime(2026, 11, 11, hour, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_queue_position_counts_waiting_handoffs(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    first = conv.chat(None, "转人工")
    second = conv.chat(None, "我要找你们店长")
    assert (first.handoff["position"], second.handoff["position"]) == (1, 2)  # type: ignore[index]
    assert "前面还有1位" in str(second.reply) and "下一位" in str(first.reply)
    conv.claim(first.handoff["id"], "alice")  # type: ignore[index]
    assert store.queue_position(second.handoff["id"]) == 1  # type: ignore[index]


def test_person_coming_is_said_once(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    sid = conv.chat(None, "转人工").session_id
    follow = [conv.chat(sid, t) for t in ["在吗", "快点"]]
    assert [f.reply for f in follow] == [None, None]
    bot_msgs = [m for m in conv.history(sid) if m["role"] == "bot"]
    assert len(bot_msgs) == 1


def test_outside_service_hours_the_shopper_hears_when_agents_are_back(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: at(3))
    out = conv.chat(None, "转人工")
    assert "非工作时间" in str(out.reply) and "09:00" in str(out.reply)
    assert store.get_handoff(out.handoff["id"]).status == "waiting"  # type: ignore[index]


def test_resolve_returns_the_chat_to_the_bot_and_keeps_the_label(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store)
    out = conv.chat(None, "我的快递单号13812345678怎么查不到，你们是骗子吧")
    hid = out.handoff["id"]  # type: ignore[index]
    conv.claim(hid, "alice")
    with pytest.raises(ConflictError):
        conv.claim(hid, "bob")
    conv.resolve(hid, "alice", "shipping.track", None)
    assert conv.chat(out.session_id, "可以开发票吗").route == "faq"
    assert conv.export_labels() == [{"text": "我的快递单号[手机号]怎么查不到，你们是骗子吧", "faq": ["shipping.track"]}]
    with pytest.raises(NotFoundError):
        conv.claim(999, "alice")


def test_concurrent_claims_let_exactly_one_agent_win(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store)
    hid = conv.chat(None, "转人工").handoff["id"]  # type: ignore[index]
    results: list[str] = []

    def claim(agent: str) -> None:
        try:
            conv.claim(hid, agent)
            results.append("won")
        except ConflictError:
            results.append("lost")

    threads = [threading.Thread(target=claim, args=(f"agent{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost"] * 7 + ["won"]


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    fail_first = 2

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Hook.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_is_signed_and_retried(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = WebhookNotifier(f"http://127.0.0.1:{server.server_port}/hook", "s3cret", backoff=0.05)
    conv = Conversations(lambda: bot, store, notify=hook.notify)
    out = conv.chat(None, "收到的杯子碎了")
    hook.close(timeout=10)
    server.shutdown()
    server.server_close()
    assert len(_Hook.received) == 1 and _Hook.fail_first == 0  # two 503s, then delivered
    headers, body = _Hook.received[0]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    event = json.loads(body)
    assert event["type"] == "handoff.created" and event["handoff"]["id"] == out.handoff["id"]  # type: ignore[index]
    assert event["handoff"]["reason"] == "problem"
