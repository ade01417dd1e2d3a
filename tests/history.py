"""A shop's history with known times, for the figures' tests: a clock the store and the outcomes read,
chat turns written as the conversation service writes them, and a day of them counted by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from bot.figures.outcomes import give_feedback, rate, record_order
from bot.service.schema import new_token
from bot.service.store import Store

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def local(day: int, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    """A time in Shanghai on 2026-11-<day>."""
    return dt.datetime(2026, 11, day, hh, mm, ss, tzinfo=SHANGHAI)


class Clock:
    def __init__(self) -> None:
        self.now = local(26, 0).astimezone(dt.UTC)  # the store keeps UTC

    def at(self, day: int, hh: int, mm: int = 0, ss: int = 0) -> None:
        """Local time in Shanghai on 2026-11-<day>."""
        self.now = local(day, hh, mm, ss).astimezone(dt.UTC)


class Shop:
    """Plays turns through the store as the conversation service writes them."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self.started: set[str] = set()

    def turn(self, sid: str, action: str, intent: str | None = None) -> int:
        new = sid not in self.started
        self.started.add(sid)
        _, bot = self.store.record_turn(sid, "问一下", "回答", state={"fallbacks": 0, "last_intent": intent},
                                        new_session=new, intent=intent, confidence=0.9,
                                        extra={"action": action, "suggestions": []})
        return bot.id

    def hand_off(self, sid: str, reason: str) -> int:
        new = sid not in self.started
        self.started.add(sid)
        _, h, _, _ = self.store.hand_off(sid, "找人", new_session=new, reason=reason, intent=f"human.{reason}",
                                         guesses=[], bot_text="稍等",
                                         bot_fields={"extra": {"action": "handoff"}})
        return h.id


def play_the_day(shop: Shop, clock: Clock) -> dict[str, str]:
    s = {name: new_token() for name in "ABCDEFGH"}
    st = shop.store
    clock.at(25, 23, 59, 59)  # the day before, one second before midnight: outside the 26th
    f = shop.turn(s["F"], "answer", "shipping.when")
    give_feedback(st, s["F"], f, True)
    clock.at(25, 23, 59)
    shop.turn(s["H"], "answer", "shipping.when")
    clock.at(26, 0, 0, 0)  # midnight: the 26th
    a1 = shop.turn(s["A"], "answer", "shipping.when")
    give_feedback(st, s["A"], a1, True)
    clock.at(26, 0, 1)
    shop.turn(s["H"], "answer", "shipping.when")  # H wrote on both days
    clock.at(26, 8)
    a2 = shop.turn(s["A"], "answer", "shipping.fee")
    give_feedback(st, s["A"], a2, False)
    give_feedback(st, s["A"], a2, True)  # changed their mind: the last tap counts
    clock.at(26, 9)
    b1 = shop.turn(s["B"], "answer", "size.chart")
    give_feedback(st, s["B"], b1, False)
    shop.turn(s["B"], "suggest", "size.fit")
    shop.turn(s["B"], "clarify", None)
    clock.at(26, 10)
    c = shop.hand_off(s["C"], "requested")
    clock.at(26, 10, 2)
    st.claim(c, "alice")  # waited 120 s
    clock.at(26, 10, 2, 30)
    st.agent_reply(c, "alice", "您好")  # first reply after 150 s
    clock.at(26, 10, 3)
    st.agent_reply(c, "alice", "好的")  # nothing new to answer: not a reply time
    clock.at(26, 10, 5)
    st.message_to_agent(s["C"], "还有个问题")
    clock.at(26, 10, 5, 40)
    st.agent_reply(c, "alice", "您说")  # 40 s
    clock.at(26, 10, 10)
    st.resolve(c, "alice", None, None, system_text="回到机器人")
    rate(st, s["C"], 5, "很好")
    clock.at(26, 11)
    d = shop.hand_off(s["D"], "complaint")
    clock.at(26, 11, 10)
    st.agent_reply(d, "bob", "抱歉")  # replying claims it: waited and answered after 600 s
    clock.at(26, 11, 30)
    st.resolve(d, "bob", None, None)
    rate(st, s["D"], 2, None)
    clock.at(26, 12)
    shop.hand_off(s["E"], "problem")  # nobody claims it
    # Orders from the shop's checkout: A bought the same evening (reported twice: counted once), E
    # an hour after asking, C the next morning (within 24 h), B three days later (too late), and H
    # just before its message of the 26th (before that conversation).
    for _ in range(2):
        record_order(st, s["A"], "A-1", Decimal("199.90"), local(26, 20))
    record_order(st, s["E"], "E-1", Decimal("0.10"), local(26, 13))
    record_order(st, s["C"], "C-1", Decimal("59"), local(27, 9))
    record_order(st, s["B"], "B-1", Decimal("10"), local(29, 9))
    record_order(st, s["H"], "H-1", Decimal("5"), local(25, 23, 59, 30))
    clock.at(27, 0, 0, 0)  # the next day
    shop.turn(s["G"], "suggest", "size.fit")
    shop.hand_off(s["G"], "requested")
    return s


