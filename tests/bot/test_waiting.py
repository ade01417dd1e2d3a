"""The shopper's side of a handoff (bot/service/waiting.py) on a real SQLite store: the acknowledgement
once per burst, the place in the queue and the agent who joins, told as they change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from bot.assist.transfer import transfer
from bot.service.conversations import Conversations
from bot.service.events import EventBus
from bot.service.schema import Message
from bot.service.store import Store
from bot.service.waiting import BURST_GAP, needs_ack, shopper_handoff

T0 = dt.datetime(2026, 11, 11, 6, 0, tzinfo=dt.UTC)  # 14:00 in Shanghai: within service hours


class Recorder(EventBus):
    """The in-process bus, also keeping what was published (channel, event)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, channel: str, event: dict[str, Any]) -> None:
        self.sent.append((channel, event))
        super().publish(channel, event)

    def handoff_events(self, session_id: str) -> list[dict[str, Any]]:
        return [e["handoff"] for c, e in self.sent if c == f"session:{session_id}" and e["type"] == "handoff"]


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'k.db'}")
    s.create_schema()
    return s


def msg(role: str, minutes: float, action: str | None = None) -> Message:
    return Message(role=role, text="…", created_at=T0 + dt.timedelta(minutes=minutes),
                   extra={"action": action} if action else None)


# fmt: off
RULE = [
    ("the first message after the bot's handoff notice", [msg("shopper", 0), msg("bot", 0, "handoff")], 0.5, True),
    ("the next one of the same burst", [msg("bot", 0, "handoff"), msg("shopper", 0.2), msg("bot", 0.2, "ack")], 0.5,
     False),
    ("a third one, the shopper's last", [msg("bot", 0, "ack"), msg("shopper", 0.4)], 0.6, False),
    ("after the bot answered meanwhile", [msg("bot", 0, "ack"), msg("shopper", 1), msg("bot", 1, "answer")], 1.2, True),
    ("after the agent wrote", [msg("bot", 0, "ack"), msg("agent", 1)], 1.5, True),
    ("after a quiet spell", [msg("bot", 0, "ack"), msg("shopper", 1)], 1 + BURST_GAP.total_seconds() / 60, True),
    ("a chat of the shopper's messages only", [msg("shopper", 0), msg("shopper", 0.1)], 0.2, True),
]
# fmt: on


@pytest.mark.parametrize(("what", "recent", "at", "ack"), RULE, ids=[r[0] for r in RULE])
def test_a_burst_is_acknowledged_once(what: str, recent: list[Message], at: float, ack: bool) -> None:
    assert needs_ack(recent, T0 + dt.timedelta(minutes=at)) is ack


def test_the_acknowledgement_is_the_shops_and_stops_once_an_agent_has_the_chat(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    conv = Conversations(lambda: bot, store, now=lambda: dt.datetime.now(dt.UTC))
    first = conv.chat(None, "转人工")
    sid, hid = first.session_id, first.handoff["id"]  # type: ignore[index]
    lines = [conv.chat(sid, t) for t in ("在吗", "订单号发你了 1234567", "快点")]
    assert [r.action for r in lines] == ["ack", "handoff", "handoff"]
    assert lines[0].reply == "已收到，客服接入后会第一时间看到，请稍等哦～"
    assert lines[0].handoff == {"id": hid, "status": "waiting", "position": 1}
    later = Conversations(lambda: bot, store, now=lambda: dt.datetime.now(dt.UTC) + BURST_GAP)
    assert later.chat(sid, "还在吗").action == "ack"  # quiet for a while: a new burst
    conv.claim(hid, "alice")
    assert conv.chat(sid, "人呢").reply is None  # the agent reads it: nothing to acknowledge
    transcript = [(m["role"], m["text"]) for m in conv.detail(hid)["transcript"]]
    assert sum(t == lines[0].reply for _, t in transcript) == 2


def test_the_place_and_the_agent_are_told_as_they_change(bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    events = Recorder()
    conv = Conversations(lambda: bot, store, events, display_names={"alice": "小美"})
    chats = [conv.chat(None, "转人工") for _ in range(3)]
    sids = [c.session_id for c in chats]
    hids = [c.handoff["id"] for c in chats]  # type: ignore[index]
    assert [shopper_handoff(store, s, conv.display_names)["position"] for s in sids] == [1, 2, 3]  # type: ignore[index]

    # Given the first claimed by alice: its shopper hears 小美 (never the login), the others move up.
    conv.claim(hids[0], "alice")
    assert events.handoff_events(sids[0])[-1] == {"id": hids[0], "status": "assigned", "position": 0, "agent": "小美"}
    assert [events.handoff_events(s)[-1]["position"] for s in sids[1:]] == [1, 2]

    # When the second is resolved while it waits, the third is next; a transfer of the third names bob.
    conv.resolve(hids[1], "bob", None, None)
    assert events.handoff_events(sids[2])[-1] == {"id": hids[2], "status": "waiting", "position": 1, "agent": None}
    transfer(conv, hids[2], "alice", "bob", "", ["alice", "bob"])
    assert events.handoff_events(sids[2])[-1]["agent"] == "bob"  # no display name: the login name

    # After a reload the same is read back; a chat nobody has is null.
    assert shopper_handoff(store, sids[0], conv.display_names) == events.handoff_events(sids[0])[-1]
    assert shopper_handoff(store, sids[1], conv.display_names) is None
    assert all("alice" not in str(e) for c, e in events.sent if c.startswith("session:"))
