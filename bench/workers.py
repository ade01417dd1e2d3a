"""Several workers (issue 18, item 5): `kefu serve --workers 2` against `--workers 1`, on PostgreSQL and Redis.

Each count runs `kefu serve --workers N` (as `python -m training serve`, the command a shop runs) with
the default model, a fresh PostgreSQL schema, Redis for the shared rate limits and events (the
settings a shop with several workers needs), and the chat rate limits lifted; after a warm-up, wrk
sends POST /v1/chat (a new session a request) at the given connections. The target is a ratio of
kefu with itself: two workers' throughput at least 1.7 times one worker's, measured back to back in
one run. wrk, PostgreSQL and Redis share the machine's cores with the workers, as they would on a
shop's one small machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    clean_env,
    distinct_variants,
    drop_pg_schema,
    free_port,
    fresh_pg_schema,
    log,
    machine_info,
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
            row = run_wrk(base + "/v1/chat", connections, seconds, bodies)
            row.update(workers=n, ready_s=round(ready, 2))
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
    return {f"rps_{top}_workers_over_1": {"value": value, "target": f">= {TARGET:g}",
                                         "met": value is not None and value >= TARGET},
            "errors": {"value": errors, "target": "0", "met": errors == 0}}


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
    lines += _table(["workers", "req/s", "p50 ms", "p99 ms", "errors", "ready s"],
                    [[r["workers"], r["rps"], r["p50_ms"], r["p99_ms"], sum(r["errors"].values()) or "", r["ready_s"]]
                     for r in wk["levels"]])
    lines += _table(["target", "value", "target", "met"],
                    [[k.replace("_", " "), t["value"], t["target"], "yes" if t["met"] else "no"]
                     for k, t in wk["targets"].items()])
    return lines
