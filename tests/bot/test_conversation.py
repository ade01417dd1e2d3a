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

from bot.dialogue.voice import say
from bot.errors import ConflictError, NotFoundError
from bot.service.conversations import WAITING_SUGGEST, Conversations, export_labels
from bot.service.desk import Desk, DeskRules
from bot.service.store import Store
from bot.service.webhook import SIGNATURE_HEADER, WebhookNotifier


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
    # One sentence says a person is coming (the entry's answer); the place is the widget's banner.
    assert [str(r.reply).count("转接") for r in (first, second)] == [1, 1]
    assert "排队" not in str(second.reply)
    conv.claim(first.handoff["id"], "alice")  # type: ignore[index]
    assert store.queue_position(second.handoff["id"]) == 1  # type: ignore[index]


def test_person_coming_is_said_once(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    sid = conv.chat(None, "转人工").session_id
    follow = [conv.chat(sid, t) for t in ["在吗", "快点"]]
    assert [f.action for f in follow] == ["ack", "handoff"]  # a burst is acknowledged once
    assert follow[0].reply and "转接" not in follow[0].reply and follow[1].reply is None
    bot_msgs = [m["text"] for m in conv.history(sid) if m["role"] == "bot"]
    assert len(bot_msgs) == 2 and sum("转接" in t for t in bot_msgs) == 1


def test_while_waiting_the_bot_answers_what_it_knows_and_the_agent_sees_it(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    first = conv.chat(None, "转人工")
    sid, hid = first.session_id, first.handoff["id"]  # type: ignore[index]
    waiting = conv.chat(sid, "可以开发票吗")
    assert (waiting.route, waiting.action, waiting.intent) == ("faq", "answer", "payment.invoice")
    assert waiting.reply and waiting.handoff == {"id": hid, "status": "waiting", "position": 1}
    called = conv.chat(sid, "在吗")  # in the queue, a greeting calls the person (and is acknowledged)
    assert (called.action, called.intent) == ("ack", "human.request")
    assert store.get_handoff(hid).status == "waiting"
    transcript = [(m["role"], m["text"]) for m in conv.detail(hid)["transcript"]]
    assert ("shopper", "可以开发票吗") in transcript and ("bot", waiting.reply) in transcript
    conv.claim(hid, "alice")
    claimed = conv.chat(sid, "可以开发票吗")  # the person has the chat now: the bot keeps quiet
    assert (claimed.route, claimed.reply) == ("human", None)
    assert [m["role"] for m in conv.history(sid)][-1] == "shopper"


def test_while_waiting_an_unsure_question_gets_quick_replies_and_a_line_for_the_person_none(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    """A handoff no longer silences the bot on what it likely knows: quick replies while the shopper waits
    (the agent sees them); what the shopper writes for the person gets no reply, and the chat waits."""
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    first = conv.chat(None, "转人工")
    sid, hid = first.session_id, first.handoff["id"]  # type: ignore[index]
    unsure = conv.chat(sid, "改不了的话我就取消重拍")
    assert (unsure.route, unsure.action) == ("faq", "suggest") and unsure.confidence >= WAITING_SUGGEST
    assert unsure.suggestions[0]["intent"] == "returns.cancel" and unsure.reply
    assert unsure.handoff == {"id": hid, "status": "waiting", "position": 1}
    lines = [conv.chat(sid, line) for line in ("订单号发你了 1234567", "就是昨天买的那个", "人呢")]
    assert [r.action for r in lines] == ["ack", "handoff", "handoff"]  # for the person: one acknowledgement
    assert [r.reply is None for r in lines] == [False, True, True]
    transcript = [(m["role"], m["text"]) for m in conv.detail(hid)["transcript"]]
    assert ("bot", unsure.reply) in transcript and store.get_handoff(hid).status == "waiting"


def test_while_waiting_what_the_shopper_adds_about_the_problem_stays_with_the_person(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    """After a handoff the chat is about its entry: more about the broken item is the person's (not an
    answer about exchanges), while a new FAQ question is still answered at once."""
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    first = conv.chat(None, "充电宝收到充不进电")
    sid = first.session_id
    assert (first.action, first.intent) == ("handoff", "human.problem")
    assert store.session_context(sid)[0].last_intent == "human.problem"
    more = [conv.chat(sid, line) for line in ("换了根线也一样", "照片拍好了 发你")]
    assert [r.route for r in more] == ["human", "human"] and [r.action for r in more] == ["ack", "handoff"]
    asked = conv.chat(sid, "换货运费谁出")
    assert (asked.route, asked.action, asked.intent) == ("faq", "answer", "returns.fee")


def test_while_waiting_thanks_and_ok_get_a_line_that_the_person_is_coming(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    """好 等你们消息 after a handoff about a broken item asks for nothing: the bot says the person is coming
    (the shop's `replies.waiting_closing`, not its goodbye), the chat stays the person's and about the problem."""
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    first = conv.chat(None, "充电宝收到充不进电")
    sid, hid = first.session_id, first.handoff["id"]  # type: ignore[index]
    ok = conv.chat(sid, "好 等你们消息")
    assert (ok.route, ok.action, ok.intent) == ("faq", "answer", "smalltalk.thanks")
    assert ok.reply == say(bot.kb.shop, "waiting_closing") and ok.reply != bot.kb.answer("smalltalk.thanks")
    assert store.get_handoff(hid).status == "waiting" and store.session_context(sid)[0].last_intent == "human.problem"
    assert ("bot", ok.reply) in [(m["role"], m["text"]) for m in conv.detail(hid)["transcript"]]
    more = conv.chat(sid, "换了根线也一样")
    assert more.route == "human"  # still about the problem


def test_outside_service_hours_the_shopper_hears_when_agents_are_back(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: at(3))
    out = conv.chat(None, "转人工")
    assert "非工作时间" in str(out.reply) and "09:00" in str(out.reply)
    assert store.get_handoff(out.handoff["id"]).status == "waiting"  # type: ignore[index]


def test_the_notice_at_a_handoff_is_honest_about_who_is_at_the_desk(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    """Agents at their consoles after hours are there: no "come back at 09:00"; nobody there in the
    hours: no "someone is coming"; nobody after hours: the hours."""
    desk = Desk(store, DeskRules(("alice",)))
    night = Conversations(lambda: bot, store, now=lambda: at(3), desk=desk)
    day = Conversations(lambda: bot, store, now=lambda: at(14), desk=desk)
    offline = say(bot.kb.shop, "offline")
    assert "非工作时间" in str(night.chat(None, "转人工").reply)
    assert str(day.chat(None, "转人工").reply).endswith("\n" + offline)
    desk.set_status("alice", "online")
    late = night.chat(None, "转人工")
    assert late.reply == bot.kb.answer("human.request")  # one sentence: she is coming


def test_resolve_returns_the_chat_to_the_bot_and_keeps_the_label(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store)
    out = conv.chat(None, "我的快递单号13812345678怎么查不到，你们是骗子吧")
    hid = out.handoff["id"]  # type: ignore[index]
    conv.claim(hid, "alice")
    with pytest.raises(ConflictError):
        conv.claim(hid, "bob")
    conv.resolve(hid, "alice", "shipping.track", None)
    assert conv.chat(out.session_id, "可以开发票吗").route == "faq"
    assert export_labels(store) == [{"text": "我的快递单号[手机号]怎么查不到，你们是骗子吧", "faq": ["shipping.track"]}]
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
    hook = WebhookNotifier(f"http://127.0.0.1:{server.server_port}/hook", "s3cret", backoff=0.05,
                           agent_url="https://kefu.shop.example/agent")
    conv = Conversations(lambda: bot, store, notify=hook.notify)
    out = conv.chat(None, "收到的杯子碎了，电话13812345678")
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
    # What leaves the shop: a link for agents, never the shopper's session id, personal data masked.
    assert event["handoff"]["url"] == f"https://kefu.shop.example/agent#handoff-{out.handoff['id']}"  # type: ignore[index]
    assert out.session_id not in body.decode() and "session_id" not in event["handoff"]
    assert event["handoff"]["last_message"] == "收到的杯子碎了，电话[手机号]"


def test_webhook_carries_the_shoppers_words_only_when_the_shop_opts_in() -> None:
    event = {"type": "handoff.created", "handoff": {"id": 7, "session_id": "secret-session", "status": "waiting",
                                                    "last_message": "电话13812345678"}}
    for personal, text in ((False, "电话[手机号]"), (True, "电话13812345678")):
        hook = WebhookNotifier("http://127.0.0.1:9/none", "s3cret-s3cret", personal_data=personal)
        public = hook.public(event)
        hook.close(timeout=1)
        assert public["handoff"]["last_message"] == text and "session_id" not in public["handoff"]


def _sessions(store: Store) -> int:
    from sqlalchemy import func, select

    from bot.service.schema import ChatSession

    with store.tx() as s:
        return int(s.scalar(select(func.count(ChatSession.id))) or 0)


def test_a_first_turn_stores_the_session_its_messages_and_state_together(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    out = conv.chat(None, "什么时候发货")
    assert out.route == "faq" and out.intent == "shipping.when"
    chat = store.get_session(out.session_id)
    assert (chat.mode, chat.fallbacks, chat.last_intent) == ("bot", 0, "shipping.when")
    history = conv.history(out.session_id)
    assert [(m["role"], m["text"]) for m in history] == [("shopper", "什么时候发货"), ("bot", out.reply)]
    assert history[0]["id"] < history[1]["id"] == out.message_id
    assert history[1]["intent"] == "shipping.when" and history[1]["created_at"]
    again = conv.chat(out.session_id, "那运费呢")  # the stored session goes on
    assert again.session_id == out.session_id and len(conv.history(out.session_id)) == 4


def test_a_first_message_for_a_person_stores_the_session_in_human_mode(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    out = conv.chat(None, "转人工")
    assert out.route == "human" and store.get_session(out.session_id).mode == "human"
    assert [m["role"] for m in conv.history(out.session_id)] == ["shopper", "bot"]
    assert store.get_handoff(out.handoff["id"]).session_id == out.session_id  # type: ignore[index]


def test_a_refused_first_message_leaves_no_empty_session(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    from bot.errors import InvalidInputError

    conv = Conversations(lambda: bot, store, now=lambda: at(14))
    before = _sessions(store)
    for bad in ["", "   ", "\u200b\u200b", "字" * 5000, "转人工\x00"]:
        with pytest.raises(InvalidInputError):
            conv.chat(None, bad)
    assert _sessions(store) == before
    conv.chat(None, "在吗")
    assert _sessions(store) == before + 1
