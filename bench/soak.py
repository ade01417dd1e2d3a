"""`python -m bench.soak` (`make soak`): a bounded soak run against a real server, loopback only.

200 concurrent shopper sessions send 50,000 chat messages (FAQ questions, greetings, ~5% that ask
for a person or complain) as fast as the server answers, while agents claim, answer and resolve
every handoff through the agent API, so sessions go back to the bot. The run stops at the message
target or at a time cap, whichever comes first. Then the database is counted directly: every
acknowledged shopper message (a 2xx with a message_id) must be stored, and nothing more; likewise
the agents' messages. Any 5xx, any transport error or any mismatch makes the exit status non-zero.

The server is `python -m uvicorn api.main:create_app --factory` (as `kefu serve` runs it) on a free
loopback port, a fresh SQLite file (or, with --db postgres, a fresh PostgreSQL schema, dropped
after), rate limits raised out of the way (all traffic comes from one IP). The model is trained
into a temporary folder unless --models names one; models/ is never touched.

Results: bench/results/soak.json and soak.md (soak-postgres.* with --db postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    DATA,
    RESULTS,
    Server,
    default_embedder,
    drop_pg_schema,
    fresh_pg_schema,
    load_messages,
    log,
    machine_info,
    pg_available,
    processes,
    summarize_ms,
    train_model,
)
from bench.httpload import server_env

GREETINGS = ["你好", "在吗", "亲在吗？", "您好", "hello", "有人吗", "谢谢", "好的谢谢", "嗯嗯", "好的", "哦哦知道了",
             "拜拜"]
HANDOFF = ["转人工", "我要投诉", "人工客服", "我要找人工", "你是机器人吗", "收到的杯子碎了", "太过分了，我要投诉你们",
           "叫你们店长出来", "给我打个电话", "发错货了，颜色不对"]
AGENT_REPLY = "您好，我是客服小王，这边帮您处理，请稍等～"
WAIT_TEXT = "好的，我等一下"  # what a shopper writes once handed off, before waiting for the agent


def scripted_texts(models_dir: Path | None = None, embedder: str = "none") -> tuple[list[str], list[str], list[str]]:
    """FAQ questions, greetings, handoff triggers.

    FAQ questions are bench/messages.txt lines that no handoff rule catches and, given a models folder,
    that its model answers by itself (so that handoffs come from the ~5% triggers, not from whatever the
    model cannot answer in the benchmark's deliberately varied messages).
    """
    from bot.dialogue.rules import match
    from bot.language.normalize import normalize

    faq = [m for m in load_messages() if match(normalize(m)) is None]
    if models_dir is not None:
        from bot.dialogue.policy import SessionState
        from bot.loader import load_bot

        bot = load_bot(DATA, models_dir, embedder=embedder)
        faq = [m for m in faq if bot.reply(m, SessionState(fallbacks=0, last_intent=None, last_text=None)).action
               == "answer"]
    assert all(match(normalize(t)) for t in HANDOFF), "every handoff trigger must hit a rule"
    return faq, GREETINGS, HANDOFF


class Tally:
    """What the clients saw: everything counted once, in one asyncio loop (no locks needed)."""

    def __init__(self, target: int, deadline: float) -> None:
        self.target, self.deadline = target, deadline
        self.issued = 0
        self.acked = 0  # chat 2xx with a message_id
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # transport errors, by exception type
        self.latencies: list[float] = []
        self.routes: Counter[str] = Counter()
        self.handoffs_started = 0  # replies that opened a handoff (route human, reply text present)
        self.sessions: set[str] = set()
        self.triggers_sent = 0
        self.agent_statuses: Counter[str] = Counter()
        self.agent_acked = 0  # agent messages answered 2xx
        self.resolved = 0
        self.back: dict[str, asyncio.Event] = {}  # session id -> set when an agent resolved its handoff
        self.handoff_waits: list[float] = []  # seconds from the handoff reply to the agent's resolution
        self.wait_timeouts = 0
        self.done = False  # no more messages to send (some may still be in flight)
        self.shoppers_done = False  # every shopper has its last answer

    def take(self) -> bool:
        """One more message may be sent (the target and the time cap not reached)."""
        if self.issued >= self.target or time.monotonic() >= self.deadline:
            self.done = True
            return False
        self.issued += 1
        return True


class Connection:
    """One shopper's keep-alive HTTP/1.1 connection (a browser tab) on asyncio streams.

    httpx costs ~6 ms of CPU per request with 200 connections, as much as the server's own work on a
    2-core machine; this costs a fraction of that, so the load generator does not starve the server.
    """

    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            return await asyncio.wait_for(self._post(path, payload), self.timeout)
        except BaseException:
            self.close()  # a half-read response must not be mistaken for the next one
            raise

    async def _post(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in head[1:] if ln)}
        data = await self.reader.readexactly(int(headers["content-length"]))  # uvicorn always sends it for JSON
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(head[0].split()[1]), json.loads(data) if data else {}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def shopper(port: int, tally: Tally, rng: random.Random, texts: tuple[list[str], list[str], list[str]],
                  handoff_rate: float, timeout: float) -> None:
    """One concurrent shopper: conversation after conversation (3-40 messages each) until the budget is spent.

    Once handed off, the shopper writes one more message (stored, the bot stays silent), then waits for the
    agent to resolve the handoff (at most 60 s) and carries on with the bot, as a real shopper would.
    """
    faq, greetings, triggers = texts
    conn = Connection(port, timeout)
    try:
        while not tally.done:
            session_id: str | None = None
            handed_off_at = 0.0
            for i in range(rng.randint(3, 40)):
                if not tally.take():
                    return
                r = rng.random()
                if handed_off_at:
                    text = WAIT_TEXT
                elif r < handoff_rate:
                    text = rng.choice(triggers)
                    tally.triggers_sent += 1
                elif i == 0 or r < handoff_rate + 0.08:
                    text = rng.choice(greetings)
                else:
                    text = rng.choice(faq)
                body: dict[str, Any] = {"message": text}
                if session_id:
                    body["session_id"] = session_id
                t0 = time.perf_counter()
                try:
                    status, out = await conn.post("/v1/chat", body)
                except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the run
                    tally.errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.2)
                    break  # start a new conversation
                tally.latencies.append(time.perf_counter() - t0)
                tally.statuses[str(status)] += 1
                if not 200 <= status < 300:
                    break
                if isinstance(out.get("message_id"), int):
                    tally.acked += 1
                session_id = out["session_id"]
                tally.sessions.add(session_id)
                tally.routes[out["route"]] += 1
                # this message opened a handoff (an acknowledgement while waiting, action "ack", did not)
                if out["route"] == "human" and out.get("action") == "handoff" and out.get("reply"):
                    tally.handoffs_started += 1
                    handed_off_at = time.perf_counter()
                elif handed_off_at:  # WAIT_TEXT was sent: wait for the agent
                    back = tally.back.setdefault(session_id, asyncio.Event())
                    try:
                        await asyncio.wait_for(back.wait(), 60)
                        tally.handoff_waits.append(time.perf_counter() - handed_off_at)
                    except TimeoutError:
                        tally.wait_timeouts += 1
                    tally.back.pop(session_id, None)
                    handed_off_at = 0.0
                    conn.close()  # idle past uvicorn's 5 s keep-alive: a new connection, as a browser would
    finally:
        conn.close()


async def agent_desk(client: Any, tally: Tally, tokens: list[str]) -> None:
    """The agents: poll the waiting queue and work every new handoff at once in its own task (claim, one
    reply, resolve) under agent `id % len(tokens)`, so sessions go back to the bot within seconds."""
    seen: set[int] = set()  # never dispatched twice: a failure shows up in the counts, not as a retry
    tasks: set[asyncio.Task[None]] = set()

    async def call(token: str, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        except Exception as exc:  # noqa: BLE001
            tally.errors[f"agent {type(exc).__name__}"] += 1
            return None
        tally.agent_statuses[str(resp.status_code)] += 1
        return resp if resp.is_success else None

    async def work(hid: int, session_id: str) -> None:
        token = tokens[hid % len(tokens)]
        if await call(token, "POST", f"/v1/handoffs/{hid}/claim") is None:
            return
        if await call(token, "POST", f"/v1/handoffs/{hid}/messages", json={"text": AGENT_REPLY}) is not None:
            tally.agent_acked += 1
        if await call(token, "POST", f"/v1/handoffs/{hid}/resolve", json={}) is not None:
            tally.resolved += 1
            tally.back.setdefault(session_id, asyncio.Event()).set()  # the shopper may carry on

    while True:
        # Read before the poll: a handoff the last shoppers opened is in a poll that starts after every
        # shopper has its answer (a poll already under way then may have missed it; `done` comes earlier,
        # while the last messages are still in flight).
        finished = tally.shoppers_done
        resp = await call(tokens[0], "GET", "/v1/handoffs", params={"status": "waiting"})
        new = [(h["id"], h["session_id"]) for h in resp.json()["data"] if h["id"] not in seen] if resp else []
        for hid, session_id in new:
            seen.add(hid)
            task = asyncio.create_task(work(hid, session_id))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if finished and not new and not tasks:  # the shoppers are done and every handoff is worked
            return
        await asyncio.sleep(0.2)


async def drive(url: str, port: int, args: argparse.Namespace, texts: tuple[list[str], list[str], list[str]],
                agents: list[tuple[str, str]], alive: Any) -> Tally:
    """The shoppers on their own connections, the agents on one httpx client (tens of requests a second)."""
    import httpx

    tally = Tally(args.messages, time.monotonic() + args.max_seconds)
    # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive timeout closes them on the
    # server side: reusing one the server is closing would fail a request for the client's sake.
    limits = httpx.Limits(max_connections=50, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=args.timeout) as client:
        shoppers = [shopper(port, tally, random.Random(args.seed * 100_003 + i), texts, args.handoff_rate,
                            args.timeout) for i in range(args.sessions)]
        desk = agent_desk(client, tally, [t for _, t in agents])
        last = 0

        async def progress() -> None:
            nonlocal last
            while not tally.done:
                for _ in range(10):
                    await asyncio.sleep(1)
                    if not alive():  # the server died: stop now, the checks will fail
                        tally.done = True
                        tally.errors["server exited"] += 1
                log(f"  {tally.issued} sent, {tally.acked} acknowledged, "
                    f"{(tally.issued - last) / 10:.0f} msg/s, statuses {dict(tally.statuses)}")
                last = tally.issued

        ticker = asyncio.create_task(progress())
        desk_task = asyncio.create_task(desk)
        await asyncio.gather(*shoppers)
        tally.done = tally.shoppers_done = True
        await desk_task  # the agents finish the handoffs still open, then stop
        ticker.cancel()
    return tally


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live children (uvicorn's workers), from /proc."""
    return sum(cpu for p, (parent, _, cpu) in processes().items() if pid in (p, parent))


def count_db(url: str) -> dict[str, Any]:
    """Rows in the server's database, counted directly with SQLAlchemy after the server stopped."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        roles = dict(conn.execute(sa.text("SELECT role, COUNT(*) FROM messages GROUP BY role")).all())
        handoffs = dict(conn.execute(sa.text("SELECT status, COUNT(*) FROM handoffs GROUP BY status")).all())
        reasons = dict(conn.execute(sa.text("SELECT reason, COUNT(*) FROM handoffs GROUP BY reason")).all())
        sessions = conn.execute(sa.text("SELECT COUNT(*) FROM sessions")).scalar_one()
    engine.dispose()
    return {"messages_by_role": {k: int(v) for k, v in roles.items()}, "sessions": int(sessions),
            "handoffs_by_status": {k: int(v) for k, v in handoffs.items()},
            "handoffs_by_reason": {k: int(v) for k, v in reasons.items()}}


def markdown(r: dict[str, Any]) -> str:
    c, s = r["client"], r["stored"]
    lat = {k: round(v) if k.endswith("_ms") else v for k, v in r["latency"].items()}
    wait = {k: round(v) if k.endswith("_ms") else v for k, v in r["handoff_wait"].items()}
    roles = s["messages_by_role"]
    lines = [f"# kefu soak ({r['database']})", "",
             f"{r['started']}, {r['machine']['cpu']}, {r['machine']['cores']} cores; `{r['command']}`; "
             f"embedder {r['embedder']}, {r['server_workers']} server process(es).", "",
             f"**{'PASS' if r['passed'] else 'FAIL'}**" + ("" if r["target_reached"] else
                                                           f" (target of {r['target']} messages NOT reached "
                                                           f"within {r['max_seconds']} s)"), "",
             "| figure | value |", "|---|---|",
             f"| messages sent / target | {c['sent']} / {r['target']} |",
             f"| concurrent sessions (conversations started) | {r['concurrency']} ({c['sessions']}) |",
             f"| handoffs opened (share of messages) / resolved by agents | {c['handoffs_opened']} "
             f"({100 * c['handoffs_opened'] / max(1, c['sent']):.1f}%) / {c['handoffs_resolved']} |",
             f"| time from handoff to resolution, p50 / p99 (shoppers not served within 60 s) | "
             f"{wait.get('p50_ms')} / {wait.get('p99_ms')} ms ({c['wait_timeouts']}) |",
             f"| load duration | {r['duration_s']} s |",
             f"| throughput | {r['throughput_msg_s']} msg/s |",
             f"| chat latency p50 / p99 / max | {lat.get('p50_ms')} / {lat.get('p99_ms')} / {lat.get('max_ms')} ms |",
             f"| chat replies by route (faq: the bot answered; human: handed off) | {json.dumps(c['routes'])} |",
             f"| chat status codes | {json.dumps(c['statuses'])} |",
             f"| agent API status codes | {json.dumps(c['agent_statuses'])} |",
             f"| transport errors | {json.dumps(c['errors']) if c['errors'] else 'none'} |",
             f"| shopper messages acknowledged / stored | {c['acknowledged']} / {roles.get('shopper', 0)} |",
             f"| agent messages acknowledged / stored | {c['agent_acknowledged']} / {roles.get('agent', 0)} |",
             f"| sessions seen / stored | {c['sessions']} / {s['sessions']} |",
             f"| stored messages by role | {json.dumps(s['messages_by_role'])} |",
             f"| stored handoffs by status / reason | {json.dumps(s['handoffs_by_status'])} / "
             f"{json.dumps(s['handoffs_by_reason'], ensure_ascii=False)} |",
             f"| server RSS after load | {r['server_rss_mb']} MB |",
             f"| CPU seconds: server / load generator | {r['cpu']['server_s']} / {r['cpu']['load_generator_s']} |",
             ""]
    lines += ["Checks:", ""] + [f"- {'ok' if ok else 'FAILED'}: {name}" for name, ok in r["checks"].items()] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000, help="chat messages to send (default 50000)")
    ap.add_argument("--sessions", type=int, default=200, help="concurrent shopper sessions (default 200)")
    ap.add_argument("--max-seconds", type=float, default=480.0,
                    help="time cap of the load, seconds (default 480; ~6 min for 50,000 on a 2-core machine)")
    ap.add_argument("--handoff-rate", type=float, default=0.05, help="share of messages that ask for a person")
    ap.add_argument("--agents", type=int, default=3, help="agents resolving handoffs (default 3)")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1, as kefu serve)")
    ap.add_argument("--embedder", default=None, help="default: the shop's default embedder")
    ap.add_argument("--models", type=Path, help="a trained models folder to serve (default: train one into a tmp dir)")
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, seconds")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    embedder = args.embedder or default_embedder()
    name = "soak" if args.db == "sqlite" else f"soak-{args.db}"
    agents = [(f"agent{i}", f"soak-token-{i:04d}") for i in range(args.agents)]
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")

    with tempfile.TemporaryDirectory(prefix="kefu-soak-") as tmp_name:
        tmp = Path(tmp_name)
        if args.models:
            model = {"models_dir": str(args.models.resolve()), "embedder": embedder}
        else:
            log(f"training a model ({embedder}) into a temporary folder ...")
            model = train_model(DATA, tmp / "models", embedder, folds=2)  # 2-fold CV: thresholds, in half the time
        if args.db == "postgres":
            if not pg_available():
                log("PostgreSQL is not reachable on 127.0.0.1:5432; nothing run")
                return 2
            db_url = fresh_pg_schema()
        else:
            db_url = f"sqlite:///{tmp / 'soak.db'}"
        # The schema is made before the server starts: with --workers N, N processes would otherwise
        # migrate a fresh SQLite file at once (PostgreSQL has an advisory lock, SQLite does not).
        from bot.service.store import Store

        store = Store(db_url)
        store.create_schema()
        store.close()
        texts = scripted_texts(Path(model["models_dir"]), embedder)
        log(f"{len(texts[0])} FAQ questions the model answers, {len(texts[1])} greetings, "
            f"{len(texts[2])} handoff triggers")
        env = server_env(DATA, model, db_url)
        env["KEFU_AGENT_TOKENS"] = ",".join(f"{n}:{t}" for n, t in agents)
        server = Server(env, tmp / "server.log", extra_args=["--workers", str(args.workers)])
        try:
            with server.start():
                server.wait_first_answer(chat=False)  # /livez: a chat probe would store a message
                log(f"server on {server.url} ({args.db}); {args.sessions} sessions, {args.messages} messages, "
                    f"cap {args.max_seconds:.0f} s ...")
                t0, cpu0, server_cpu0 = time.perf_counter(), time.process_time(), cpu_seconds(server.pid)
                try:
                    from uvloop import run as runner
                except ImportError:
                    runner = asyncio.run
                tally = runner(drive(server.url, server.port, args, texts, agents, lambda: server.proc.poll() is None))
                duration = time.perf_counter() - t0
                cpu = {"server_s": round(cpu_seconds(server.pid) - server_cpu0, 1),
                       "load_generator_s": round(time.process_time() - cpu0, 1)}
                rss = server.memory_kb().get("VmRSS", 0)
            log_lines = (tmp / "server.log").read_text(encoding="utf-8", errors="replace").splitlines()
            stored = count_db(db_url)
        finally:
            if args.db == "postgres":
                drop_pg_schema(db_url)

    fivexx = sum(n for code, n in tally.statuses.items() if code.startswith("5"))
    fivexx += sum(n for code, n in tally.agent_statuses.items() if code.startswith("5"))
    roles = stored["messages_by_role"]
    checks = {
        "no 5xx (chat and agent API)": fivexx == 0,
        "no transport errors or timeouts": not tally.errors,
        "stored shopper messages == acknowledged": roles.get("shopper", 0) == tally.acked,
        "stored agent messages == acknowledged": roles.get("agent", 0) == tally.agent_acked,
        "stored sessions == sessions seen": stored["sessions"] == len(tally.sessions),
        "no traceback in the server log": not any("Traceback" in ln for ln in log_lines),
    }
    command = " ".join(["python -m bench.soak", *(sys.argv[1:] if argv is None else argv)])
    res = {"started": started, "database": args.db, "command": command,
           "machine": machine_info(), "embedder": embedder, "server_workers": args.workers,
           "target": args.messages, "concurrency": args.sessions, "max_seconds": args.max_seconds,
           "handoff_rate": args.handoff_rate, "agents": args.agents,
           "target_reached": tally.issued >= args.messages, "duration_s": round(duration, 1),
           "throughput_msg_s": round(tally.issued / duration, 1) if duration else 0.0,
           "latency": summarize_ms(tally.latencies), "handoff_wait": summarize_ms(tally.handoff_waits),
           "client": {"sent": tally.issued, "acknowledged": tally.acked,
                      "statuses": dict(sorted(tally.statuses.items())),
                      "errors": dict(tally.errors), "routes": dict(tally.routes), "sessions": len(tally.sessions),
                      "handoff_triggers_sent": tally.triggers_sent, "handoffs_opened": tally.handoffs_started,
                      "handoffs_resolved": tally.resolved, "wait_timeouts": tally.wait_timeouts,
                      "agent_acknowledged": tally.agent_acked,
                      "agent_statuses": dict(sorted(tally.agent_statuses.items()))},
           # the server's log without its access lines (warnings, errors), first 30 lines
           "server_log": [ln for ln in log_lines if not ln.startswith("INFO:")][:30],
           "stored": stored, "server_rss_mb": round(rss / 1024, 1), "cpu": cpu, "checks": checks,
           "passed": all(checks.values())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / f"{name}.md").write_text(markdown(res), encoding="utf-8")
    log(f"wrote {args.out / name}.json and .md")
    sys.stdout.write(markdown(res))
    if not res["target_reached"]:
        log(f"WARNING: only {tally.issued} of {args.messages} messages sent within {args.max_seconds:.0f} s")
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
