"""The shop's figures over a day played with known times, on SQLite and PostgreSQL: every number is
counted by hand below, the shop's day boundary (Asia/Shanghai, UTC+8) included."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.errors import ConflictError, InvalidInputError, NotFoundError, SessionNotFoundError
from bot.figures import analytics
from bot.figures.outcomes import give_feedback, rate, record_order
from bot.service.schema import new_token
from bot.service.store import Store
from tests.history import Clock, Shop, play_the_day


@pytest.fixture()
def store(db_url: str) -> Store:
    s = Store(db_url)
    s.create_schema()
    yield s  # type: ignore[misc]
    s.close()


def test_every_figure_of_a_day_is_what_was_counted_by_hand(store: Store, clock: Clock) -> None:
    play_the_day(Shop(store, clock), clock)
    got = analytics.stats(store, analytics.period("2026-11-26", "2026-11-26", "Asia/Shanghai"))
    expected: dict[str, Any] = {
        "from": "2026-11-26", "to": "2026-11-26", "timezone": "Asia/Shanghai",
        "conversations": 6,  # A B C D E H (F and G wrote on other days)
        "handed_off": 3, "containment_rate": 0.5,
        "handoff_reasons": {"requested": 1, "complaint": 1, "problem": 1, "low_confidence": 0,
                            "repeated_fallback": 0, "out_of_scope": 0, "reception": 0},
        "bot_turns": 6,  # A 2, B 3, H 1; handoffs' notices are not the bot's own work
        "unanswered_turns": 2, "unanswered_rate": 0.3333,
        "feedback": {"helpful": 2, "unhelpful": 1},
        "ratings": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}, "satisfaction_rate": 0.5,
        "intents": [{"intent": "shipping.when", "answered": 2, "helpful": 1, "unhelpful": 0},
                    {"intent": "shipping.fee", "answered": 1, "helpful": 1, "unhelpful": 0},
                    {"intent": "size.chart", "answered": 1, "helpful": 0, "unhelpful": 1}],
        "wait_seconds_p50": 360.0,  # 120 and 600
        "agents": [{"agent": "alice", "handled": 1, "first_reply_seconds_p50": 150.0, "within_180s_rate": 1.0,
                    "mean_reply_seconds": 95.0},  # 150 and 40
                   {"agent": "bob", "handled": 1, "first_reply_seconds_p50": 600.0, "within_180s_rate": 0.0,
                    "mean_reply_seconds": 600.0}],
        "orders": 2, "order_amount": 200.0,  # A and E; C's was placed on the 27th
        "conversion_rate": 0.5,  # A, C and E of six
        "conversion": {"bot_only": {"conversations": 3, "converted": 1, "rate": 0.3333},  # A of A B H
                       "handed_off": {"conversations": 3, "converted": 2, "rate": 0.6667}},  # C E of C D E
        "days": [{"date": "2026-11-26", "conversations": 6, "handed_off": 3, "containment_rate": 0.5}],
    }
    assert got == expected


def test_days_split_at_the_shops_midnight_and_a_range_counts_a_conversation_once(store: Store, clock: Clock) -> None:
    play_the_day(Shop(store, clock), clock)
    got = analytics.stats(store, analytics.period("2026-11-25", "2026-11-27", "Asia/Shanghai"))
    assert got["days"] == [
        {"date": "2026-11-25", "conversations": 2, "handed_off": 0, "containment_rate": 1.0},  # F, H
        {"date": "2026-11-26", "conversations": 6, "handed_off": 3, "containment_rate": 0.5},
        {"date": "2026-11-27", "conversations": 1, "handed_off": 1, "containment_rate": 0.0},  # G
    ]
    assert (got["conversations"], got["handed_off"]) == (8, 4)  # H wrote on two days: one conversation
    assert got["feedback"] == {"helpful": 3, "unhelpful": 1}  # F's answer too
    assert (got["orders"], got["order_amount"], got["conversion_rate"]) == (4, 264.0, 0.5)  # H's counts now
    # A shop in UTC has other days: its 25th ends at 08:00 on the 26th in Shanghai (F, H, and A's first).
    utc = analytics.stats(store, analytics.period("2026-11-25", "2026-11-25", "UTC"))
    assert (utc["conversations"], utc["bot_turns"], utc["handed_off"]) == (3, 4, 0)
    # An empty range: counts are 0 and rates are null, never a made-up 0 %.
    empty = analytics.stats(store, analytics.period("2026-10-01", "2026-10-01", "Asia/Shanghai"))
    assert empty["conversations"] == 0 and empty["containment_rate"] is None
    assert empty["satisfaction_rate"] is None and empty["wait_seconds_p50"] is None and empty["agents"] == []


def test_feedback_is_only_for_the_bots_answers_of_the_session_and_a_rating_once_per_ended_chat(
        store: Store, clock: Clock) -> None:
    shop = Shop(store, clock)
    mine, other = new_token(), new_token()
    answer = shop.turn(mine, "answer", "shipping.when")
    chips = shop.turn(mine, "suggest", "size.fit")
    theirs = shop.turn(other, "answer", "shipping.when")
    with pytest.raises(NotFoundError):
        give_feedback(store, mine, theirs, True)  # another session's answer
    with pytest.raises(NotFoundError):
        give_feedback(store, mine, 10**9, True)
    with pytest.raises(InvalidInputError):
        give_feedback(store, mine, chips, True)  # quick replies are not an answer
    with pytest.raises(SessionNotFoundError):
        give_feedback(store, new_token(), answer, True)
    assert give_feedback(store, mine, answer, False).helpful is False
    with pytest.raises(ConflictError):
        rate(store, mine, 4, None)  # no conversation with an agent yet
    h = shop.hand_off(mine, "requested")
    with pytest.raises(ConflictError):
        rate(store, mine, 4, None)  # not ended yet
    store.resolve(h, "alice", None, None)
    with pytest.raises(InvalidInputError):
        rate(store, mine, 6, None)
    assert rate(store, mine, 4, "快").handoff_id == h
    with pytest.raises(ConflictError):
        rate(store, mine, 5, None)  # once per handoff
    got = analytics.stats(store, analytics.period("2026-11-26", "2026-11-26", "Asia/Shanghai"))
    assert got["ratings"]["4"] == 1 and got["feedback"] == {"helpful": 0, "unhelpful": 1}


def test_a_day_runs_from_local_midnight_to_the_next_when_the_clocks_change(store: Store, clock: Clock) -> None:
    # Berlin's clocks go back at 03:00 on 2026-10-25: that day has 25 hours, 00:00 at UTC+2 to 24:00 at UTC+1.
    shop, berlin = Shop(store, clock), "Europe/Berlin"
    for sid, local, handed in ((new_token(), (24, 23, 30), False),  # 21:30 UTC on the 24th
                               (new_token(), (25, 0, 30), True),  # 22:30 UTC on the 24th
                               (new_token(), (25, 23, 30), True),  # 22:30 UTC on the 25th
                               (new_token(), (26, 0, 30), True)):  # 23:30 UTC on the 25th
        clock.now = dt.datetime(2026, 10, *local, tzinfo=ZoneInfo(berlin)).astimezone(dt.UTC)
        shop.hand_off(sid, "requested") if handed else shop.turn(sid, "answer", "shipping.when")
    got = analytics.stats(store, analytics.period("2026-10-24", "2026-10-26", berlin))
    assert [(d["date"], d["conversations"], d["handed_off"]) for d in got["days"]] == [
        ("2026-10-24", 1, 0), ("2026-10-25", 2, 2), ("2026-10-26", 1, 1)]
    assert (got["conversations"], got["handed_off"]) == (4, 3)


@pytest.mark.parametrize("start, end, tz", [
    ("2026-11-27", "2026-11-26", None), ("2026-1-1", "2026-01-02", None), ("20261126", "2026-11-26", None),
    ("2026-02-30", "2026-03-01", None), ("2025-01-01", "2026-11-26", None), ("2026-11-26", "2026-11-26", "Mars/Base"),
])
def test_a_bad_range_is_refused_with_a_reason(start: str, end: str, tz: str | None) -> None:
    with pytest.raises(InvalidInputError):
        analytics.period(start, end, tz)


def test_without_dates_the_range_is_the_last_seven_days_of_the_shop() -> None:
    late = dt.datetime(2026, 11, 26, 17, 0, tzinfo=dt.UTC)  # 01:00 on the 27th in Shanghai
    p = analytics.period(None, None, "Asia/Shanghai", now=late)
    assert (p.start, p.end) == (dt.date(2026, 11, 21), dt.date(2026, 11, 27))


def test_a_reply_counts_for_the_handoff_it_answered_only(store: Store, clock: Clock) -> None:
    shop, sid = Shop(store, clock), new_token()
    clock.at(26, 9)
    first = shop.hand_off(sid, "requested")
    clock.at(26, 9, 5)
    store.claim(first, "alice")
    store.resolve(first, "alice", None, None)  # ended without a word to the shopper
    clock.at(26, 10)
    second = shop.hand_off(sid, "requested")
    clock.at(26, 10, 0, 30)
    store.agent_reply(second, "alice", "在的")
    got = analytics.stats(store, analytics.period("2026-11-26", "2026-11-26", "Asia/Shanghai"))
    assert got["agents"] == [{"agent": "alice", "handled": 2, "first_reply_seconds_p50": 30.0,
                              "within_180s_rate": 0.5, "mean_reply_seconds": 30.0}]
    assert (got["conversations"], got["handed_off"], got["handoff_reasons"]["requested"]) == (1, 1, 2)


def test_an_order_is_counted_once_whoever_reports_it_again(store: Store, clock: Clock) -> None:
    shop, sid, other = Shop(store, clock), new_token(), new_token()
    shop.turn(sid, "answer", "shipping.when")
    shop.turn(other, "answer", "shipping.when")
    order, new = record_order(store, sid, "T-1", Decimal("88.8"))
    assert new and order.amount_cents == 8880 and order.at is not None
    assert record_order(store, sid, "T-1", Decimal("88.80"))[1] is False  # the checkout retried
    with pytest.raises(ConflictError):
        record_order(store, sid, "T-1", Decimal("88.81"))  # the same order with another amount
    with pytest.raises(ConflictError):
        record_order(store, other, "T-1", Decimal("88.8"))  # ...or for another chat
    with pytest.raises(SessionNotFoundError):
        record_order(store, new_token(), "T-2", Decimal("1"))
    for amount, at in ((Decimal("1.005"), None), (Decimal("-1"), None), (Decimal("1"), dt.datetime(2026, 11, 26))):
        with pytest.raises(InvalidInputError):
            record_order(store, sid, "T-3", amount, at)
    got = analytics.stats(store, analytics.period("2026-11-26", "2026-11-26", "Asia/Shanghai"))
    assert (got["orders"], got["order_amount"], got["conversion_rate"]) == (1, 88.8, 0.5)
