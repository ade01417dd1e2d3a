"""The cost of serving (issue 18, items 2 and 4): HTTP chat against the engine in process, and start-up.

Item 2: `POST /v1/chat` under wrk (a new session per request) against `Conversations.chat` called
in process, one thread, on the same messages and the same kind of store (a fresh SQLite file, a
fresh PostgreSQL schema), both with the vector cache warm (every message embedded once before the
measure: what is compared is what serving adds to a turn, not the embedder). The figure is HTTP
req/s over in-process msg/s at each level (the engine measured just before and just after the
level), target at least 0.6; beside it, the CPU a chat costs in process over the CPU a request
costs the server. The in-process side runs in its own process (`python -c`, in the code measured),
so that `ab` can measure another revision's code the same way, back to back with this checkout's.

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

from bench.common import ROOT, Server, clean_env, log, proc_cpu_seconds, ratio, write_bodies
from bench.httpload import Bodies, run_wrk, server_env
from bench.load import checkout

RATIO_TARGET = 0.6
START_TARGET_S = 3.0

# One process, one thread, the messages in turn: the engine as bench.inproc (and the issue) measure it.
# It loads once, then measures for the seconds it reads on each line of its input (one JSON line out).
_INPROC = r"""
import json, sys, time
from pathlib import Path
from bot.loader import load_bot
from bot.service.conversations import Conversations
from bot.service.store import Store
a = json.loads(sys.argv[1])
messages = [json.loads(x)["message"] for x in Path(a["bodies"]).read_text(encoding="utf-8").splitlines() if x]
bot = load_bot(Path(a["data"]), Path(a["models"]), embedder=a["embedder"])
store = Store(a["db"])
store.create_schema()
conv = Conversations(lambda: bot, store)  # the engine: the bot and the store (the server adds its desk)
for m in messages:  # the warm pass: every message's vectors cached, as the server's after its warm-up
    conv.chat(None, m)
print("READY", flush=True)
for line in sys.stdin:
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < float(line):
        for m in messages:
            conv.chat(None, m)
        n += len(messages)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"chats": n, "seconds": round(elapsed, 2), "msgs_per_s": round(n / elapsed, 1),
                      "cpu_ms_per_chat": round(cpu / n * 1000, 3)}), flush=True)
store.close()
"""


class InProcess:
    """Conversations.chat in `code`'s engine, in a process of its own (one thread, a new session per
    message, the cache warm), measured on demand: just before and just after each HTTP level, so that
    each ratio compares moments of the shared machine a few seconds apart."""

    def __init__(self, code: Path, data_dir: Path, model: dict[str, Any], db_url: str, bodies: Path) -> None:
        args = {"data": str(data_dir), "models": model["models_dir"], "embedder": model["embedder"], "db": db_url,
                "bodies": str(bodies)}
        self.proc = subprocess.Popen([sys.executable, "-c", _INPROC, json.dumps(args)], cwd=code, env=clean_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self._read()

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the in-process run exited with {self.proc.wait()}")
        return line

    def measure(self, seconds: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()
        return dict(json.loads(self._read()))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(60)


def one_code(code: Path, label: str, data_dir: Path, model: dict[str, Any], bodies_path: Path, make: Any,
             levels: dict[int, float], inproc_s: float, workdir: Path) -> dict[str, Any]:
    """One server running `code` and its engine in process, each on a fresh database: the engine measured
    before the first HTTP level and after each; each level's ratio is its req/s over the mean of the
    engine's msg/s just before and just after it."""
    (url, drop), (engine_url, engine_drop) = make(), make()
    server = Server(server_env(data_dir, model, url), workdir / f"server-serving-{label}.log", cwd=code)
    bodies, rows, engine = Bodies(bodies_path), [], None
    try:
        engine = InProcess(code, data_dir, model, engine_url, bodies_path)
        with server.start():
            first = server.wait_first_answer()
            warm = _warm(server.url + "/v1/chat", bodies.path)
            engines = [engine.measure(inproc_s)]
            for c, seconds in levels.items():
                cpu = _cpu_seconds(server.pid)
                row = run_wrk(server.url + "/v1/chat", c, seconds, bodies)
                row["cpu_ms_per_request"] = round((_cpu_seconds(server.pid) - cpu) / max(1, row["requests"]) * 1000, 3)
                engines.append(engine.measure(inproc_s))
                row["in_process_msgs_per_s"] = round((engines[-2]["msgs_per_s"] + engines[-1]["msgs_per_s"]) / 2, 1)
                row["http_over_in_process"] = ratio(row["rps"], row["in_process_msgs_per_s"])
                engine_cpu = (engines[-2]["cpu_ms_per_chat"] + engines[-1]["cpu_ms_per_chat"]) / 2
                row["in_process_cpu_ms_per_chat"] = round(engine_cpu, 3)
                row["cpu_in_process_over_http"] = ratio(engine_cpu, row["cpu_ms_per_request"])
                log(f"  serving {label} c={c}: {row['rps']} req/s (p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms), "
                    f"in process {row['in_process_msgs_per_s']} msg/s: {row['http_over_in_process']}"
                    + (f", errors {row['errors']}" if row["errors"] else ""))
                rows.append(row)
    finally:
        if engine is not None:
            engine.close()
        drop()
        engine_drop()
    best = max((r["http_over_in_process"] for r in rows if r["http_over_in_process"] is not None), default=None)
    return {"first_answer_s": round(first, 3), "warm_requests": warm, "in_process": engines, "levels": rows,
            "best": best, "target": f">= {RATIO_TARGET}", "met": best is not None and best >= RATIO_TARGET}


def _warm(url: str, bodies: Path) -> int:
    """Every body posted once, one after the other (the server's vector cache then holds them all)."""
    import httpx

    lines = [ln for ln in bodies.read_text(encoding="utf-8").splitlines() if ln]
    with httpx.Client(timeout=30) as client:
        for ln in lines:
            client.post(url, content=ln, headers={"content-type": "application/json"}).raise_for_status()
    return len(lines)


def start_times(data_dir: Path, model: dict[str, Any], workdir: Path, codes: dict[str, Path],
                runs: int) -> dict[str, Any]:
    """Process start to the first answered chat, `runs` times per code, the codes alternating."""
    times: dict[str, list[float]] = {name: [] for name in codes}
    cpu: dict[str, list[float]] = {name: [] for name in codes}
    for i in range(runs):
        for name, code in codes.items():
            db = workdir / f"start-{name.replace(' ', '-')}-{i}.db"
            server = Server(server_env(data_dir, model, f"sqlite:///{db}"), workdir / "server-start.log", cwd=code)
            with server.start():
                times[name].append(round(server.wait_first_answer(), 3))
                cpu[name].append(_cpu_seconds(server.pid))
            log(f"  start to first chat ({name}): {times[name][-1]} s, {cpu[name][-1]} s of CPU")
    out: dict[str, Any] = {"target_s": START_TARGET_S}
    for name, xs in times.items():
        med = statistics.median(xs)
        out[name] = {"runs_s": xs, "median_s": med, "cpu_s": cpu[name], "median_cpu_s": statistics.median(cpu[name]),
                     "met": med <= START_TARGET_S}
    return out


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user and system, all threads) a process has used: on a shared machine a start's wall
    time stretches with the others' load, its CPU time much less."""
    return round(proc_cpu_seconds(pid), 2)


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
             f"thread, {sv['in_process_seconds']:g} s just before and just after each level (their mean); HTTP wrk "
             f"at {', '.join(sv['levels'])} connections. "
             f"Target: HTTP req/s at least {sv['target']} of in-process msg/s.", ""]
    rows = []
    for db in ("sqlite", "postgres"):
        for name, r in (sv.get(db) or {}).items():
            for lv in r["levels"]:
                rows.append([db, name, lv["connections"], lv["rps"], lv["p50_ms"], lv["p99_ms"],
                             lv["in_process_msgs_per_s"], lv["http_over_in_process"], sv["target"],
                             lv.get("cpu_ms_per_request"), lv.get("in_process_cpu_ms_per_chat"),
                             lv.get("cpu_in_process_over_http")])
    lines += _table(["store", "code", "conns", "HTTP req/s", "p50 ms", "p99 ms", "in process msg/s (around it)",
                     "HTTP / in process", "target", "server CPU ms a request", "in process CPU ms a chat",
                     "CPU in process / HTTP"], rows)
    lines += ["The CPU columns: the server's CPU time (all its threads) over the requests of the level, and the "
              "in-process run's over its chats; their ratio is what a turn costs in process over what it costs "
              "served, which a shared machine's load moves much less than throughput.", ""]
    st = sv.get("start")
    if st:
        lines += ["Process start to the first answered chat (default model, a new SQLite file):", ""]
        lines += _table(["code", "runs s", "median s", "CPU s (median)", "target s", "met"],
                        [[name, ", ".join(f"{x:.2f}" for x in r["runs_s"]), r["median_s"], r.get("median_cpu_s"),
                          st["target_s"], "yes" if r["met"] else "NO"]
                         for name, r in st.items() if isinstance(r, dict)])
    return lines
