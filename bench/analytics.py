"""The shop's figures on a real shop's history: a store filled with `messages` chat messages over
60 days (sessions of ten messages, handoffs, agents' replies, feedback, ratings, orders), then
`GET /v1/admin/stats`'s computation (bot.service.analytics.stats) over the last 30 days, timed.

The history is written straight into the tables in batches (Core executemany), not through the chat
path: what is measured is reading it. PostgreSQL's tables are then VACUUMed and ANALYZEd, as
autovacuum does for tables that grew like these (PostgreSQL 13 on vacuums tables that are only
inserted into too): without statistics its planner joins handoffs to messages badly, and without the
visibility map a vacuum sets it cannot read the partial indexes of messages alone (index-only scans).
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from bench.common import log
from bot.service import analytics
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
    """Write a history of about `messages` messages; the counts of what was written."""
    rnd = random.Random(seed)
    tables = {t: [] for t in ("sessions", "messages", "handoffs", "feedback", "ratings", "orders")}
    counts = dict.fromkeys(tables, 0)
    start = dt.datetime.combine(END - dt.timedelta(days=DAYS - 1), dt.time(), dt.UTC) - dt.timedelta(hours=8)
    msg_id = handoff_id = 0

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

    sessions = max(1, messages // PER_SESSION)
    for _ in range(sessions):
        sid = new_token()
        t = start + dt.timedelta(seconds=rnd.uniform(0, DAYS * 86400))
        tables["sessions"].append({"id": sid, "created_at": t, "updated_at": t, "mode": "bot", "fallbacks": 0,
                                   "last_intent": None})
        handed = rnd.random() < 0.12
        bot_turns = 3 if handed else PER_SESSION // 2
        for _ in range(bot_turns):
            t += dt.timedelta(seconds=rnd.uniform(5, 90))
            msg_id += 1
            tables["messages"].append(_msg(msg_id, sid, "shopper", t))
            action = rnd.choices(["answer", "suggest", "clarify"], [0.86, 0.1, 0.04])[0]
            intent = rnd.choice(INTENTS)
            msg_id += 1
            tables["messages"].append(_msg(msg_id, sid, "bot", t, intent=intent, extra={"action": action}))
            if action == "answer" and rnd.random() < 0.2:
                tables["feedback"].append({"message_id": msg_id, "session_id": sid, "helpful": rnd.random() < 0.8,
                                           "at": t})
        if handed:
            t += dt.timedelta(seconds=rnd.uniform(5, 60))
            msg_id += 1
            asked = msg_id
            tables["messages"].append(_msg(asked, sid, "shopper", t))
            msg_id += 1
            tables["messages"].append(_msg(msg_id, sid, "bot", t, intent="human.request", extra={"action": "handoff"}))
            claimed = t + dt.timedelta(seconds=rnd.uniform(10, 900))
            replied = claimed + dt.timedelta(seconds=rnd.uniform(5, 120))
            resolved = replied + dt.timedelta(seconds=rnd.uniform(60, 900))
            agent = rnd.choice(AGENTS)
            for at in (replied, resolved - dt.timedelta(seconds=30)):
                msg_id += 1
                tables["messages"].append(_msg(msg_id, sid, "agent", at, author=agent))
            handoff_id += 1
            tables["handoffs"].append({"id": handoff_id, "session_id": sid, "status": "resolved",
                                       "reason": rnd.choice(REASONS), "intent": "human.request", "guesses": [],
                                       "last_message": "转人工", "message_id": asked, "agent": agent, "label": None,
                                       "note": None, "created_at": t, "assigned_at": claimed,
                                       "resolved_at": resolved})
            if rnd.random() < 0.5:
                tables["ratings"].append({"handoff_id": handoff_id, "session_id": sid, "score": rnd.randint(1, 5),
                                          "comment": None, "at": resolved})
        if rnd.random() < 0.1:
            tables["orders"].append({"order_id": f"o-{sid[:20]}", "session_id": sid,
                                     "amount_cents": rnd.randint(990, 99_900),
                                     "at": t + dt.timedelta(hours=rnd.uniform(0, 30)), "created_at": t})
        flush()
    flush(force=True)
    if store.engine.dialect.name == "postgresql":  # what autovacuum does for a table that grew like this
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # (not in a transaction)
    return counts


def _msg(msg_id: int, sid: str, role: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    """A row as bot.service.schema.insert_message writes it (the bot's action beside its extra)."""
    row = {"id": msg_id, "session_id": sid, "role": role, "text": "什么时候发货", "intent": None,
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
