"""The cost of serving (issue 18, items 2 and 4): HTTP chat against the engine in process, and start-up.

Item 2: `POST /v1/chat` under wrk (a new session per request) against `Conversations.chat` called
in process, one thread, on the same messages and the same kind of store (a fresh SQLite file, a
fresh PostgreSQL schema), both with the vector cache warm (every message embedded once before the
measure: what is compared is what serving adds to a turn, not the embedder). The figure is HTTP
req/s over in-process msg/s at each level, target at least 0.6. The in-process side runs in its
own process (`python -c`, in the code measured), so that `ab` can measure another revision's code
the same way, back to back with this checkout's.

Item 4: process start (`python -m uvicorn api.main:create_app --factory`, the default model, a
new SQLite file) to the first answered `POST /v1/chat`, target at most 3 s; several starts, with
`ab` alternating the two codes, median beside each.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, Server, clean_env, log, ratio, write_bodies
from bench.httpload import Bodies, run_wrk, server_env
from bench.load import checkout

RATIO_TARGET = 0.6
START_TARGET_S = 3.0

# One process, one thread: the store, the bot and the desk as the server builds them (api.main), the
# messages in turn.
_INPROC = r"""
import json, sys, time
from pathlib import Path
from bot.config import Settings
from bot.loader import load_bot
from bot.service.conversations import Conversations
from bot.service.desk import Desk, DeskRules
from bot.service.store import Store
a = json.loads(sys.argv[1])
messages = [json.loads(x)["message"] for x in Path(a["bodies"]).read_text(encoding="utf-8").splitlines() if x]
bot = load_bot(Path(a["data"]), Path(a["models"]), embedder=a["embedder"])
store = Store(a["db"])
store.create_schema()
s = Settings()  # the server's defaults: its desk (no agents), as api.main builds it
desk = Desk(store, DeskRules(tuple(sorted(set(s.agents().values()))), s.assignment, s.max_chats, s.reception,
                             s.presence_timeout, s.requeue_after))
conv = Conversations(lambda: bot, store, display_names=s.display_names(), desk=desk)
for m in messages:  # the warm pass: every message's vectors cached, as the server's after its warm-up
    conv.chat(None, m)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < a["seconds"]:
    for m in messages:
        conv.chat(None, m)
    n += len(messages)
elapsed = time.perf_counter() - t0
store.close()
print("SERVING_JSON " + json.dumps({"chats": n, "seconds": round(elapsed, 2), "msgs_per_s": round(n / elapsed, 1)}))
"""


def in_process(code: Path, data_dir: Path, model: dict[str, Any], db_url: str, bodies: Path,
               seconds: float) -> dict[str, Any]:
    """Conversations.chat msg/s (one thread, a new session per message, cache warm) in `code`'s engine."""
    args = {"data": str(data_dir), "models": model["models_dir"], "embedder": model["embedder"], "db": db_url,
            "bodies": str(bodies), "seconds": seconds}
    proc = subprocess.run([sys.executable, "-c", _INPROC, json.dumps(args)], cwd=code, env=clean_env(),
                          capture_output=True, text=True, timeout=seconds + 600, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SERVING_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"in-process run failed ({proc.returncode}): {proc.stderr.strip()[-600:]}")
    return dict(json.loads(line[len("SERVING_JSON "):]))


def over_http(code: Path, label: str, data_dir: Path, model: dict[str, Any], db_url: str, bodies: Bodies,
              levels: dict[int, float], workdir: Path) -> dict[str, Any]:
    """wrk on POST /v1/chat at each level against one server running `code`, after a warm pass over every
    message (so that its vector cache holds what the in-process run's holds)."""
    server = Server(server_env(data_dir, model, db_url), workdir / f"server-serving-{label}.log", cwd=code)
    rows = []
    with server.start():
        first = server.wait_first_answer()
        warm = _warm(server.url + "/v1/chat", bodies.path)
        for c, seconds in levels.items():
            row = run_wrk(server.url + "/v1/chat", c, seconds, bodies)
            log(f"  serving {label} c={c}: {row['rps']} req/s, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms"
                + (f", errors {row['errors']}" if row["errors"] else ""))
            rows.append(row)
    return {"first_answer_s": round(first, 3), "warm_requests": warm, "levels": rows}


def _warm(url: str, bodies: Path) -> int:
    """Every body posted once, one after the other (the server's vector cache then holds them all)."""
    import httpx

    lines = [ln for ln in bodies.read_text(encoding="utf-8").splitlines() if ln]
    with httpx.Client(timeout=30) as client:
        for ln in lines:
            client.post(url, content=ln, headers={"content-type": "application/json"}).raise_for_status()
    return len(lines)


def one_code(code: Path, label: str, data_dir: Path, model: dict[str, Any], bodies_path: Path, make: Any,
             levels: dict[int, float], inproc_s: float, workdir: Path) -> dict[str, Any]:
    """In process, then over HTTP, each on a fresh database; HTTP over in-process per level."""
    url, drop = make()
    try:
        engine = in_process(code, data_dir, model, url, bodies_path, inproc_s)
    finally:
        drop()
    log(f"  serving {label} in process: {engine['msgs_per_s']} msg/s")
    url, drop = make()
    try:
        http = over_http(code, label, data_dir, model, url, Bodies(bodies_path), levels, workdir)
    finally:
        drop()
    per_level = {f"c{r['connections']}": ratio(r["rps"], engine["msgs_per_s"]) for r in http["levels"]}
    best = max((v for v in per_level.values() if v is not None), default=None)
    return {"in_process": engine, "http": http, "http_over_in_process": per_level, "best": best,
            "target": f">= {RATIO_TARGET}", "met": best is not None and best >= RATIO_TARGET}


def start_times(data_dir: Path, model: dict[str, Any], workdir: Path, codes: dict[str, Path],
                runs: int) -> dict[str, Any]:
    """Process start to the first answered chat, `runs` times per code, the codes alternating."""
    times: dict[str, list[float]] = {name: [] for name in codes}
    for i in range(runs):
        for name, code in codes.items():
            db = workdir / f"start-{name.replace(' ', '-')}-{i}.db"
            server = Server(server_env(data_dir, model, f"sqlite:///{db}"), workdir / "server-start.log", cwd=code)
            with server.start():
                times[name].append(round(server.wait_first_answer(), 3))
            log(f"  start to first chat ({name}): {times[name][-1]} s")
    out: dict[str, Any] = {"target_s": START_TARGET_S}
    for name, xs in times.items():
        med = statistics.median(xs)
        out[name] = {"runs_s": xs, "median_s": med, "met": med <= START_TARGET_S}
    return out


def run_serving(data_dir: Path, model: dict[str, Any], messages: list[str], workdir: Path,
                databases: dict[str, Callable[[], tuple[str, Callable[[], None]]]], levels: dict[int, float],
                inproc_s: float, start_runs: int, ab: str | None = None) -> dict[str, Any]:
    """Both measures on each database; with `ab`, REV's code first, then this checkout's, back to back."""
    workdir.mkdir(parents=True, exist_ok=True)
    bodies_path = write_bodies(workdir / "bodies-serving.jsonl", messages)
    codes: dict[str, Path] = {}
    if ab:
        codes[f"before {ab}"] = checkout(ab, workdir / f"code-{ab}")
    codes["after" if ab else "this checkout"] = ROOT
    out: dict[str, Any] = {"messages": len(messages), "levels": {str(c): s for c, s in levels.items()},
                           "in_process_seconds": inproc_s, "ab": ab, "target": RATIO_TARGET,
                           "cache": "every message embedded once before the measure, in process and in the server"}
    for db, make in databases.items():
        out[db] = {name: one_code(code, f"{db}-{name.split()[0]}", data_dir, model, bodies_path, make, levels,
                                  inproc_s, workdir) for name, code in codes.items()}
    out["start"] = start_times(data_dir, model, workdir, codes, start_runs)
    return out


def markdown(sv: dict[str, Any] | None) -> list[str]:
    """The section's tables for results.md."""
    if not sv:
        return []
    from bench.report import _table

    if "error" in sv or "skipped" in sv:
        return ["## Serving", "", str(sv.get("error") or sv.get("skipped")), ""]
    lines = ["## Serving: POST /v1/chat over HTTP against Conversations.chat in process", "",
             f"{sv['messages']} messages, a new session each, the vector cache warm on both sides; in process one "
             f"thread for {sv['in_process_seconds']:g} s; HTTP wrk at {', '.join(sv['levels'])} connections. "
             f"Target: HTTP req/s at least {sv['target']} of in-process msg/s.", ""]
    rows = []
    for db in ("sqlite", "postgres"):
        for name, r in (sv.get(db) or {}).items():
            for lv in r["http"]["levels"]:
                c = lv["connections"]
                rows.append([db, name, r["in_process"]["msgs_per_s"], c, lv["rps"], lv["p50_ms"], lv["p99_ms"],
                             r["http_over_in_process"][f"c{c}"], sv["target"]])
    lines += _table(["store", "code", "in process msg/s", "conns", "HTTP req/s", "p50 ms", "p99 ms",
                     "HTTP / in process", "target"], rows)
    st = sv.get("start")
    if st:
        lines += ["Process start to the first answered chat (default model, a new SQLite file):", ""]
        lines += _table(["code", "runs s", "median s", "target s", "met"],
                        [[name, ", ".join(f"{x:.2f}" for x in r["runs_s"]), r["median_s"], st["target_s"],
                          "yes" if r["met"] else "NO"] for name, r in st.items() if isinstance(r, dict)])
    return lines
