"""Several workers (issue 18, item 5): `kefu serve --workers 2` against `--workers 1`, on PostgreSQL and Redis.

Each count runs `kefu serve --workers N` (as `python -m training serve`, the command a shop runs) with
the default model, a fresh PostgreSQL schema, Redis for the shared rate limits and events (the
settings a shop with several workers needs), and the chat rate limits lifted; after a warm-up, wrk
sends POST /v1/chat (a new session a request) at the given connections. The target is a ratio of
kefu with itself: two workers' throughput at least 1.7 times one worker's, measured back to back in
one run. wrk, PostgreSQL and Redis share the machine's cores with the workers, as they would on a
shop's one small machine. Beside each run, the machine's cores busy (/proc/stat) and the CPU a request
cost kefu, PostgreSQL, Redis and the rest; from one worker's, the ceiling: the most any number of
workers could serve with every core busy at that cost a request, over one worker's throughput.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Procs,
    clean_env,
    distinct_variants,
    drop_pg_schema,
    free_port,
    fresh_pg_schema,
    log,
    machine_info,
    processes,
    ratio,
    write_bodies,
)
from bench.httpload import UNLIMITED, Bodies, run_wrk

TARGET = 1.7  # two workers over one, chat throughput
REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_available(url: str = REDIS_URL) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except Exception:  # noqa: BLE001 - any failure means: not there
        return False


def _serve(workers: int, data_dir: Path, model: dict[str, Any], db_url: str, log_path: Path,
           prefix: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = clean_env(KEFU_DATA_DIR=str(data_dir), KEFU_MODELS_DIR=model["models_dir"],
                    KEFU_EMBEDDER=model["embedder"], KEFU_DATABASE_URL=db_url, KEFU_REDIS_URL=REDIS_URL,
                    KEFU_REDIS_PREFIX=prefix, KEFU_RATE_LIMIT_IP=UNLIMITED, KEFU_RATE_LIMIT_SESSION=UNLIMITED)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "training", "serve", "--workers", str(workers),
                                 "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=out)
    return proc, f"http://127.0.0.1:{port}"


def _wait(proc: subprocess.Popen[bytes], url: str, workers: int, timeout: float = 300.0) -> float:
    """Seconds until every worker answered (as many answered chats in a row as there are workers, and a few
    more: the kernel spreads connections over the workers' shared socket)."""
    import httpx

    t0, answered = time.perf_counter(), 0
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"kefu serve --workers {workers} exited with {proc.returncode}")
        try:
            with httpx.Client(timeout=10) as client:  # a new connection each time
                ok = client.post(url + "/v1/chat", json={"message": "在吗"}).status_code == 200
            answered = answered + 1 if ok else 0
            if answered >= 4 * workers:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"kefu serve --workers {workers} not answering after {timeout:.0f} s")


def _busy() -> float:
    """CPU seconds the whole machine has been busy, every core: user, nice, system, irq and softirq (not idle,
    I/O wait, the hypervisor's steal, nor guest time, which user already counts)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / os.sysconf("SC_CLK_TCK")


def _split(before: Procs, after: Procs, root: int) -> dict[str, float]:
    """CPU seconds between two snapshots, by who used them: kefu (the serve process and its workers),
    PostgreSQL, Redis (a process started meanwhile counts from zero; one that ended meanwhile is missed)."""
    kefu, grown = {root}, True
    while grown:  # the serve process's descendants
        grown = False
        for pid, (parent, _, _) in after.items():
            if parent in kefu and pid not in kefu:
                kefu.add(pid)
                grown = True
    used = {"kefu": 0.0, "postgres": 0.0, "redis": 0.0}
    for pid, (_, name, cpu) in after.items():
        group = "kefu" if pid in kefu else "postgres" if name == "postgres" else \
            "redis" if name.startswith("redis") else None
        if group:
            used[group] += cpu - (before[pid][2] if pid in before else 0.0)
    return used


def run_workers(data_dir: Path, model: dict[str, Any], messages: list[str], workdir: Path,
                connections: int, seconds: float, counts: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """Chat throughput of `kefu serve --workers N` for each N of `counts`, back to back, and the ratio of
    the largest over one worker's with the target beside it."""
    workdir.mkdir(parents=True, exist_ok=True)
    bodies = Bodies(write_bodies(workdir / "bodies-workers.jsonl", distinct_variants(messages)))
    rows = []
    for n in counts:
        url = fresh_pg_schema()
        prefix = f"kefu-bench-{n}-{time.time_ns()}"  # its own keys: no limit or event of an earlier run
        proc, base = _serve(n, data_dir, model, url, workdir / f"server-workers-{n}.log", prefix)
        try:
            ready = _wait(proc, base, n)
            run_wrk(base + "/v1/chat", connections, 3, bodies)  # warm-up, not recorded
            procs, busy = processes(), _busy()
            row = run_wrk(base + "/v1/chat", connections, seconds, bodies)
            used, busy = _split(procs, processes(), proc.pid), _busy() - busy
            used["other"] = max(0.0, busy - sum(used.values()))  # wrk, the kernel's loopback, other daemons
            row.update(workers=n, ready_s=round(ready, 2), cores_busy=round(busy / row["seconds"], 2),
                       cpu_ms_per_request={k: round(v * 1000 / max(1, row["requests"]), 3) for k, v in used.items()})
            log(f"  workers {n}: {row['rps']} req/s at {connections} connections, p50 {row['p50_ms']} ms, "
                f"p99 {row['p99_ms']} ms" + (f", errors {row['errors']}" if row["errors"] else ""))
            rows.append(row)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            drop_pg_schema(url)
    return {"connections": connections, "seconds": seconds, "database": "postgres", "redis": REDIS_URL,
            "cores": machine_info()["cores"], "levels": rows, "targets": targets(rows)}


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The item's target: the most workers' throughput over one worker's, and no error."""
    by_n = {r["workers"]: r for r in rows}
    top = max(by_n)
    value = ratio(by_n[top]["rps"], by_n[1]["rps"]) if 1 in by_n and top != 1 else None
    errors = sum(sum(r["errors"].values()) for r in rows)
    out = {f"rps_{top}_workers_over_1": {"value": value, "target": f">= {TARGET:g}",
                                        "met": value is not None and value >= TARGET},
           "errors": {"value": errors, "target": "0", "met": errors == 0}}
    if 1 in by_n and by_n[1].get("cores_busy"):
        # At the CPU a request cost the whole machine with one worker (kefu, PostgreSQL, Redis, wrk), every
        # core busy would serve cores / cores busy times one worker's throughput: what more workers can reach.
        ceiling = ratio(os.cpu_count() or 1, by_n[1]["cores_busy"])
        out["ceiling_every_core_busy"] = {"value": ceiling, "target": f">= {TARGET:g}",
                                          "met": ceiling is not None and ceiling >= TARGET}
    return out


def markdown(wk: dict[str, Any] | None) -> list[str]:
    """The section's tables for results.md."""
    if not wk:
        return []
    from bench.report import _table

    if "error" in wk or "skipped" in wk:
        return ["## Several workers", "", str(wk.get("error") or wk.get("skipped")), ""]
    lines = ["## Several workers: `kefu serve --workers N` on PostgreSQL and Redis", "",
             f"POST /v1/chat, wrk at {wk['connections']} connections for {wk['seconds']:g} s each, a new session a "
             f"request, on {wk['cores']} cores shared with wrk, PostgreSQL and Redis.", ""]
    cost = [f"CPU ms a request: {', '.join(f'{k} {v}' for k, v in r['cpu_ms_per_request'].items())}"
            if r.get("cpu_ms_per_request") else "" for r in wk["levels"]]
    lines += _table(["workers", "req/s", "p50 ms", "p99 ms", "errors", "ready s", "cores busy", "what a request cost"],
                    [[r["workers"], r["rps"], r["p50_ms"], r["p99_ms"], sum(r["errors"].values()) or "", r["ready_s"],
                      r.get("cores_busy", ""), c] for r, c in zip(wk["levels"], cost, strict=True)])
    lines += ["The machine's cores busy during each run (all processes, from /proc/stat) and the CPU a request cost "
              "each of kefu's processes, PostgreSQL, Redis and the rest (wrk, the kernel's loopback networking, the "
              "machine's other daemons): the ceiling is what every core busy at one worker's cost a request would "
              "serve, over one worker's throughput.", ""]
    lines += _table(["target", "value", "target", "met"],
                    [[k.replace("_", " "), t["value"], t["target"], "yes" if t["met"] else "no"]
                     for k, t in wk["targets"].items()])
    return lines
