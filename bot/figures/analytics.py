"""The shop's figures, each defined once (the README's analytics section has the same formulas).

A range is whole days `start`..`end` (both included) in the shop's time zone (`timezone` in
shop.yml, default Asia/Shanghai); a day runs from local midnight to the next. Every figure counts
what happened inside the range:

- conversations: sessions with a shopper message in the range;
- handed_off: sessions with a handoff created in the range (a handoff starts on a shopper message,
  so these are among the conversations); containment_rate = (conversations - handed_off) / conversations;
- handoff_reasons: handoffs created in the range, by reason (every reason listed, 0 included);
- bot_turns: the bot's replies in the range that were its own work (an answer, quick replies, a
  request to rephrase; a handoff's notice is counted in handed_off); unanswered_turns: of those,
  quick replies and requests to rephrase; unanswered_rate = unanswered_turns / bot_turns;
- feedback: 有帮助 / 没帮助 on answers given in the range (the shopper's last tap);
- ratings: shoppers' ratings given in the range, by score; satisfaction_rate = (4s + 5s) / ratings;
- intents: answers in the range by entry, with their feedback, most answered first;
- wait_seconds_p50: the median time from a handoff's creation to its claim, of those created in the
  range and claimed;
- agents: per agent, the handoffs created in the range that the agent took (handled); the median
  time from a handoff's creation to the agent's first message (first_reply_seconds_p50, of those
  answered); within_180s_rate: handled handoffs answered within 180 s (3分钟回复率), over handled;
  mean_reply_seconds (平均响应时间): each agent message that answers shopper messages, timed from the
  first of them (the handed-off message first), averaged;
- orders, order_amount: orders placed in the range (POST /v1/orders) and their sum in yuan;
- conversion_rate (询单转化率): conversations followed by an order of their session placed between
  their first shopper message in the range and CONVERSION_HOURS after their last, over
  conversations; conversion.bot_only and conversion.handed_off split it;
- days: conversations, handed_off and containment_rate of each day of the range.

A rate over nothing is None (JSON null), never 0. Rates are rounded to 4 decimals, seconds to 0.1.
"""

from __future__ import annotations

import bisect
import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from bot.dialogue.results import Reason
from bot.errors import InvalidInputError
from bot.service.schema import Feedback, Handoff, Message, Order, Rating, as_utc
from bot.service.store import Store

DEFAULT_TIMEZONE = "Asia/Shanghai"
MAX_DAYS = 366
DEFAULT_DAYS = 7
REPLY_TARGET_SECONDS = 180  # 3分钟回复率
CONVERSION_HOURS = 24  # an order this long after a chat counts for it (询单转化率)
OWN_WORK = ("answer", "suggest", "clarify")
UNANSWERED = ("suggest", "clarify")


@dataclass(frozen=True)
class Period:
    """Whole days in a time zone, both ends included."""

    start: dt.date
    end: dt.date
    tz: ZoneInfo

    def bounds(self, day: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
        """The range (or one `day` of it) in UTC: [local midnight of the first day, of the day after the last)."""
        first, last = (day, day) if day else (self.start, self.end)
        lo = dt.datetime.combine(first, dt.time(), self.tz)
        hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), self.tz)
        return lo.astimezone(dt.UTC), hi.astimezone(dt.UTC)

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def period(start: str | dt.date | None, end: str | dt.date | None, timezone: str | None = None,
           now: dt.datetime | None = None) -> Period:
    """A checked range: dates as YYYY-MM-DD, start not after end, at most MAX_DAYS days. Without an
    end, today (in the time zone); without a start, the DEFAULT_DAYS days up to the end."""
    try:
        tz = ZoneInfo(timezone or DEFAULT_TIMEZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"unknown time zone '{timezone}'") from None
    last = _date("to", end) if end is not None else (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
    first = _date("from", start) if start is not None else last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInputError("'from' is after 'to'")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInputError(f"a range covers at most {MAX_DAYS} days")
    return Period(first, last, tz)


def _date(name: str, value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        if len(value) != len("YYYY-MM-DD"):  # Python also reads 20261127 and 2026-W48-5
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"'{name}' must be a date as YYYY-MM-DD") from None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(later: dt.datetime, earlier: dt.datetime) -> float:
    return (as_utc(later) - as_utc(earlier)).total_seconds()


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def stats(store: Store, p: Period) -> dict[str, Any]:
    """Every figure of the period (the module's docstring defines them)."""
    lo, hi = p.bounds()
    with store.tx() as s:
        handoffs = _handoffs(s, lo, hi)  # read once: handoffs by day and reason, waits, agents, conversions
        handed = {h.session_id for h in handoffs}
        conversations, handed_off = _conversations(s, lo, hi), len(handed)
        reasons = dict.fromkeys((r.value for r in Reason), 0)
        for h in handoffs:
            reasons[h.reason] = reasons.get(h.reason, 0) + 1
        in_range = and_(Message.created_at >= lo, Message.created_at < hi)  # with an action: the bot's
        turns: dict[str, int] = {str(a): int(n) for a, n in s.execute(
            select(Message.action, func.count()).where(in_range, Message.action.in_(OWN_WORK))
            .group_by(Message.action))}
        answered = and_(in_range, Message.action == "answer")
        per_intent: dict[str, dict[str, Any]] = {}

        def entry(intent: Any) -> dict[str, Any]:
            return per_intent.setdefault(str(intent), {"intent": str(intent), "answered": 0, "helpful": 0,
                                                       "unhelpful": 0})

        for intent, n in s.execute(select(Message.intent, func.count()).where(answered).group_by(Message.intent)):
            entry(intent)["answered"] = int(n)
        feedback = {"helpful": 0, "unhelpful": 0}
        for intent, helpful, n in s.execute(select(Message.intent, Feedback.helpful, func.count())
                                            .join(Message, Message.id == Feedback.message_id)
                                            .where(answered, Feedback.at >= lo)  # a tap comes after its answer
                                            .group_by(Message.intent, Feedback.helpful)):
            key = "helpful" if helpful else "unhelpful"
            feedback[key] += int(n)
            entry(intent)[key] += int(n)
        ratings = dict.fromkeys(("1", "2", "3", "4", "5"), 0)
        for score, n in s.execute(select(Rating.score, func.count()).where(Rating.at >= lo, Rating.at < hi)
                                  .group_by(Rating.score)):
            ratings[str(score)] = int(n)
        replies = _reply_times(s, lo, hi)
        orders = _orders(s, lo, hi, conversations, handed_off, handed)
        days = []  # a query a day for the conversations: one pass bucketing the range by day (a CASE over
        # the days' bounds) measured slower on SQLite and no faster on PostgreSQL
        for day, handed_that_day in zip(p.days(), _by_day(p, handoffs), strict=True):
            d_conv, d_handed = _conversations(s, *p.bounds(day)), len(handed_that_day)
            days.append({"date": day.isoformat(), "conversations": d_conv, "handed_off": d_handed,
                         "containment_rate": _rate(d_conv - d_handed, d_conv)})
    bot_turns = sum(turns.values())
    unanswered = sum(turns.get(a, 0) for a in UNANSWERED)
    rated = sum(ratings.values())
    return {
        "from": p.start.isoformat(), "to": p.end.isoformat(), "timezone": p.tz.key,
        "conversations": conversations, "handed_off": handed_off,
        "containment_rate": _rate(conversations - handed_off, conversations),
        "handoff_reasons": reasons,
        "bot_turns": bot_turns, "unanswered_turns": unanswered, "unanswered_rate": _rate(unanswered, bot_turns),
        "feedback": feedback,
        "ratings": ratings, "satisfaction_rate": _rate(ratings["4"] + ratings["5"], rated),
        "intents": sorted(per_intent.values(), key=lambda i: (-i["answered"], i["intent"])),
        "wait_seconds_p50": _median([_seconds(h.assigned_at, h.created_at) for h in handoffs if h.assigned_at]),
        "agents": _agents(handoffs, replies),
        **orders,
        "days": days,
    }


def _conversations(s: Session, lo: dt.datetime, hi: dt.datetime) -> int:
    """Sessions with a shopper message in [lo, hi)."""
    # COUNT over a DISTINCT subquery: PostgreSQL hashes it where count(DISTINCT) would sort.
    shoppers = (select(Message.session_id).distinct()
                .where(Message.role == "shopper", Message.created_at >= lo, Message.created_at < hi).subquery())
    return int(s.scalar(select(func.count()).select_from(shoppers)) or 0)


def _handoffs(s: Session, lo: dt.datetime, hi: dt.datetime) -> list[Any]:
    """The handoffs created in [lo, hi), oldest first."""
    return list(s.execute(select(Handoff.id, Handoff.session_id, Handoff.message_id, Handoff.reason, Handoff.agent,
                                 Handoff.created_at, Handoff.assigned_at, Handoff.resolved_at)
                          .where(Handoff.created_at >= lo, Handoff.created_at < hi).order_by(Handoff.id)))


def _by_day(p: Period, handoffs: list[Any]) -> list[set[str]]:
    """For each day of the period, the sessions of the handoffs created that day."""
    ends = [p.bounds(day)[1] for day in p.days()]
    out: list[set[str]] = [set() for _ in ends]
    for h in handoffs:
        out[bisect.bisect_right(ends, as_utc(h.created_at))].add(h.session_id)
    return out


def _reply_times(s: Session, lo: dt.datetime, hi: dt.datetime) -> dict[int, list[float]]:
    """For each handoff created in [lo, hi) that an agent took, the agent's reply times in it: each
    from the first shopper message it answers (the handoff's own message first) to the reply. Only
    its session's shopper and agent messages after the handed-off one (and up to its end) are read,
    through the session index."""
    said = (select(Handoff.id.label("handoff"), Handoff.created_at.label("since"), Message.role, Message.created_at)
            .join(Message, and_(Message.session_id == Handoff.session_id,
                                Message.id > func.coalesce(Handoff.message_id, 0),
                                Message.role.in_(("shopper", "agent")), Message.created_at >= lo,
                                or_(Handoff.resolved_at.is_(None), Message.created_at <= Handoff.resolved_at)))
            .where(Handoff.created_at >= lo, Handoff.created_at < hi, Handoff.agent != "")
            .order_by(Handoff.id, Message.id))
    out: dict[int, list[float]] = {}
    handoff, since = None, None
    for m in s.execute(said):
        if m.handoff != handoff:
            handoff, since = m.handoff, m.since  # the message that was handed off waits first
        if m.role == "shopper":
            since = since or m.created_at
        elif since is not None:
            out.setdefault(m.handoff, []).append(_seconds(m.created_at, since))
            since = None
    return out


def _agents(handoffs: list[Any], replies: dict[int, list[float]]) -> list[dict[str, Any]]:
    by_agent: dict[str, list[list[float]]] = {}
    for h in handoffs:
        if h.agent:
            by_agent.setdefault(h.agent, []).append(replies.get(h.id, []))
    out = []
    for agent, handled in by_agent.items():
        first = [times[0] for times in handled if times]
        every = [t for times in handled for t in times]
        out.append({"agent": agent, "handled": len(handled), "first_reply_seconds_p50": _median(first),
                    "within_180s_rate": _rate(sum(t <= REPLY_TARGET_SECONDS for t in first), len(handled)),
                    "mean_reply_seconds": round(statistics.mean(every), 1) if every else None})
    return sorted(out, key=lambda a: (-a["handled"], a["agent"]))


def _orders(s: Session, lo: dt.datetime, hi: dt.datetime, conversations: int, handed_off: int,
            handed: set[str]) -> dict[str, Any]:
    """Orders placed in [lo, hi), and the conversations of [lo, hi) followed by an order of their
    session within CONVERSION_HOURS of their last shopper message (and not before their first);
    `handed`: the sessions handed off in [lo, hi)."""
    n, cents = s.execute(select(func.count(), func.coalesce(func.sum(Order.amount_cents), 0))
                         .where(Order.at >= lo, Order.at < hi)).one()
    window = dt.timedelta(hours=CONVERSION_HOURS)
    placed = select(Order.session_id, Order.at).where(Order.at >= lo, Order.at < hi + window)
    # Only the sessions with such an order can have converted: their first and last shopper message in the range.
    spans = {sid: (as_utc(first), as_utc(last)) for sid, first, last in s.execute(
        select(Message.session_id, func.min(Message.created_at), func.max(Message.created_at))
        .where(Message.session_id.in_(placed.with_only_columns(Order.session_id)), Message.role == "shopper",
               Message.created_at >= lo, Message.created_at < hi).group_by(Message.session_id))}
    converted = {o.session_id for o in s.execute(placed)
                 if o.session_id in spans and spans[o.session_id][0] <= as_utc(o.at) <= spans[o.session_id][1] + window}
    split = {}
    for name, total, hits in (("bot_only", conversations - handed_off, len(converted - handed)),
                              ("handed_off", handed_off, len(converted & handed))):
        split[name] = {"conversations": total, "converted": hits, "rate": _rate(hits, total)}
    return {"orders": int(n), "order_amount": round(int(cents) / 100, 2),
            "conversion_rate": _rate(len(converted), conversations), "conversion": split}
