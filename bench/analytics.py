"""The shop's figures on a real shop's history: a store filled with `messages` chat messages over
60 days (sessions of ten messages, handoffs, agents' replies, feedback, ratings, orders), then
`GET /v1/admin/stats`'s computation (bot.figures.analytics.stats) over the last 30 days, timed.

The history is written straight into the tables in batches (Core executemany), not through the chat
path: what is measured is reading it. It is written in time order, as a shop's grows: the chat only
appends, so its tables' rows lie in the order of their times and their ids increase with them (a
fill session by session at random times would scatter each day's rows over the whole table, which
no shop's history does). PostgreSQL's tables are then ANALYZEd, as autovacuum does for tables that
grew like these (without statistics its planner joins handoffs to messages badly).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from bench.common import log
from bot.figures import analytics
from bot.service.schema import Feedback, Handoff, Message, Order, Rating, new_token
from bot.service.store import Store

END = dt.date(2026, 11, 26)
DAYS = 60
PER_SESSION = 10  # messages a session: shopper and bot turns, or a handoff with an agent
INTENTS = ["shipping.when", "shipping.fee", "size.chart", "size.recommend", "returns.how", "returns.refund",
           "payment.methods", "shipping.track"]
AGENTS = ["alice", "bob", "carol", "dave", "erin"]
REASONS = ["requested", "complaint", "problem", "low_confidence", "out_of_scope"]
BATCH = 20_000


def fill(store: Store, messages: int, seed: int = 11) -> dict[str, int]:
    """Write a history of about `messages` messages, in time order; the counts of what was written.

    Each session is drawn whole (its messages, handoff, feedback, rating and order, with their
    times), but its rows wait in a heap by time and are written when the history reaches them:
    every table is inserted in the order a shop's would be, ids increasing with time."""
    rnd = random.Random(seed)
    tables: dict[str, list[dict[str, Any]]] = {
        t: [] for t in ("sessions", "messages", "handoffs", "feedback", "ratings", "orders")}
    counts = dict.fromkeys(tables, 0)
    start = dt.datetime.combine(END - dt.timedelta(days=DAYS - 1), dt.time(), dt.UTC) - dt.timedelta(hours=8)
    ids = {"messages": itertools.count(1), "handoffs": itertools.count(1)}
    pending: list[tuple[dt.datetime, int, str, dict[str, Any]]] = []  # (when it is written, order drawn, table, row)
    drawn = itertools.count()

    def later(at: dt.datetime, table: str, row: dict[str, Any]) -> dict[str, Any]:
        heapq.heappush(pending, (at, next(drawn), table, row))
        return row

    def flush(force: bool = False) -> None:
        if not force and len(tables["messages"]) < BATCH:
            return
        with store.tx(write=True) as s:
            conn = s.connection()
            for name, model in (("sessions", None), ("messages", Message), ("handoffs", Handoff),
                                ("feedback", Feedback), ("ratings", Rating), ("orders", Order)):
                rows = tables[name]
                if rows:
                    table = Message.metadata.tables[name] if model is None else model.__table__
                    conn.execute(table.insert(), rows)
                    counts[name] += len(rows)
                    rows.clear()

    def write_until(now: dt.datetime | None) -> None:
        """Write the rows due by `now` (all of them for None), oldest first."""
        while pending and (now is None or pending[0][0] <= now):
            _, _, name, row = heapq.heappop(pending)
            if name in ids:
                row["id"] = next(ids[name])
            for ref in ("message_id", "handoff_id"):  # the row it refers to was written before it
                if isinstance(row.get(ref), dict):
                    row[ref] = row[ref]["id"]
            tables[name].append(row)
            flush()

    sessions = max(1, messages // PER_SESSION)
    for t in sorted(start + dt.timedelta(seconds=rnd.uniform(0, DAYS * 86400)) for _ in range(sessions)):
        write_until(t)  # what is drawn from here on is at t or later
        sid = new_token()
        later(t, "sessions", {"id": sid, "created_at": t, "updated_at": t, "mode": "bot", "fallbacks": 0,
                              "last_intent": None})
        handed = rnd.random() < 0.12
        bot_turns = 3 if handed else PER_SESSION // 2
        for _ in range(bot_turns):
            t += dt.timedelta(seconds=rnd.uniform(5, 90))
            later(t, "messages", _msg(sid, "shopper", t))
            action = rnd.choices(["answer", "suggest", "clarify"], [0.86, 0.1, 0.04])[0]
            intent = rnd.choice(INTENTS)
            answer = later(t, "messages", _msg(sid, "bot", t, intent=intent, extra={"action": action}))
            if action == "answer" and rnd.random() < 0.2:
                later(t, "feedback", {"message_id": answer, "session_id": sid, "helpful": rnd.random() < 0.8,
                                      "at": t})
        if handed:
            t += dt.timedelta(seconds=rnd.uniform(5, 60))
            asked = later(t, "messages", _msg(sid, "shopper", t))
            later(t, "messages", _msg(sid, "bot", t, intent="human.request", extra={"action": "handoff"}))
            claimed = t + dt.timedelta(seconds=rnd.uniform(10, 900))
            replied = claimed + dt.timedelta(seconds=rnd.uniform(5, 120))
            resolved = replied + dt.timedelta(seconds=rnd.uniform(60, 900))
            agent = rnd.choice(AGENTS)
            # The handoff is written when it is created, here already claimed and resolved.
            handoff = later(t, "handoffs", {"session_id": sid, "status": "resolved", "reason": rnd.choice(REASONS),
                                            "intent": "human.request", "guesses": [], "last_message": "转人工",
                                            "message_id": asked, "agent": agent, "label": None, "note": None,
                                            "created_at": t, "assigned_at": claimed, "resolved_at": resolved})
            for at in (replied, resolved - dt.timedelta(seconds=30)):
                later(at, "messages", _msg(sid, "agent", at, author=agent))
            if rnd.random() < 0.5:
                later(resolved, "ratings", {"handoff_id": handoff, "session_id": sid, "score": rnd.randint(1, 5),
                                            "comment": None, "at": resolved})
        if rnd.random() < 0.1:
            placed = t + dt.timedelta(hours=rnd.uniform(0, 30))  # reported by the checkout when placed
            later(placed, "orders", {"order_id": f"o-{sid[:20]}", "session_id": sid,
                                     "amount_cents": rnd.randint(990, 99_900), "at": placed, "created_at": placed})
    write_until(None)
    flush(force=True)
    if store.engine.dialect.name == "postgresql":  # what autovacuum does for a table that grew like this
        with store.tx(write=True) as s:
            s.execute(text("ANALYZE"))
    return counts


def _msg(sid: str, role: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    """A row as bot.service.schema.insert_message writes it (the bot's action beside its extra); its id
    is given when it is written."""
    row = {"session_id": sid, "role": role, "text": "什么时候发货", "intent": None,
           "confidence": None, "author": None, "extra": None, "created_at": at, **fields}
    row["action"] = (row["extra"] or {}).get("action") if role == "bot" else None
    return row


def time_stats(store: Store, days: int = 30, runs: int = 3) -> dict[str, Any]:
    """The stats of the last `days` days of the history, computed `runs` times."""
    period = analytics.period(END - dt.timedelta(days=days - 1), END, "Asia/Shanghai")
    seconds, figures = [], {}
    for _ in range(runs):
        t0 = time.perf_counter()
        figures = analytics.stats(store, period)
        seconds.append(time.perf_counter() - t0)
    return {"days": days, "runs": runs, "seconds_min": round(min(seconds), 3),
            "seconds_median": round(statistics.median(seconds), 3), "conversations": figures["conversations"],
            "bot_turns": figures["bot_turns"], "orders": figures["orders"]}


def run_analytics(dbs: dict[str, Callable[[], tuple[str, Callable[[], None]]]], messages: int) -> dict[str, Any]:
    """For each database: fill a fresh one with the history, then time the 30-day stats."""
    out: dict[str, Any] = {"messages": messages}
    for name, make in dbs.items():
        url, cleanup = make()
        store = Store(url)
        try:
            store.create_schema()
            t0 = time.perf_counter()
            written = fill(store, messages)
            log(f"analytics {name}: {written['messages']} messages written in {time.perf_counter() - t0:.0f} s")
            out[name] = {"written": written, "fill_seconds": round(time.perf_counter() - t0, 1),
                         **time_stats(store)}
        finally:
            store.close()
            cleanup()
    return out
