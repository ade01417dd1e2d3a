"""HTTP under load: POST /v1/chat beside GET /livez, driven by wrk (another process) on loopback.

The server is the real one (`python -m uvicorn api.main:create_app --factory`, one process, default
log level, so the access log is on as with `kefu serve`), configured by environment variables, with
rate limits raised out of the way. wrk keeps N connections busy (closed loop) for a fixed time per
level; bench/wrk.lua posts the benchmark's messages, each as a new session. The p99 "at half
saturation" comes from bench/loadgen.py, an open-loop fixed-rate generator (wrk2 is not in Debian),
and, for comparison, from the wrk level whose throughput was closest to half.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import ROOT, Server, distinct_variants, log, ratio, write_bodies

LUA = Path(__file__).resolve().parent / "wrk.lua"
UNLIMITED = "100000000"


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def server_env(data_dir: Path, model: dict[str, Any], db_url: str) -> dict[str, str]:
    return {"KEFU_DATA_DIR": str(data_dir), "KEFU_MODELS_DIR": model["models_dir"], "KEFU_EMBEDDER": model["embedder"],
            "KEFU_DATABASE_URL": db_url, "KEFU_RATE_LIMIT_IP": UNLIMITED, "KEFU_RATE_LIMIT_SESSION": UNLIMITED}


class Bodies:
    """A file of request bodies and where the last run stopped in it (so that no body repeats across runs)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.count = sum(1 for ln in self.path.read_text(encoding="utf-8").splitlines() if ln.strip())
        self.pos = 0
        self.sent = 0

    def advance(self, n: int) -> None:
        self.pos = (self.pos + n) % max(1, self.count)
        self.sent += n


def run_wrk(url: str, connections: int, duration: float, bodies: Bodies | None,
            timeout: float = 30.0) -> dict[str, Any]:
    """One wrk run (one thread); latencies in ms, throughput in requests per second."""
    args = [str(bodies.path), str(bodies.pos)] if bodies else ["-"]
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", f"{timeout:g}s",
           "-s", str(LUA), url, "--", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout + 30, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    r = json.loads(line[len("BENCH_JSON "):])
    if bodies:  # requests still in flight at the end took bodies too
        bodies.advance(r["requests"] + connections)
    seconds = r["duration_us"] / 1e6
    errors = {k[len("errors_"):]: r[k] for k in r if k.startswith("errors_") and r[k]}
    return {"connections": connections, "requests": r["requests"], "seconds": round(seconds, 2),
            "rps": round(r["requests"] / seconds, 1) if seconds else 0.0,
            "p50_ms": round(r["p50_us"] / 1000, 3), "p90_ms": round(r["p90_us"] / 1000, 3),
            "p99_ms": round(r["p99_us"] / 1000, 3), "mean_ms": round(r["mean_us"] / 1000, 3),
            "max_ms": round(r["max_us"] / 1000, 3), "errors": errors}


def run_loadgen(port: int, path: str, rate: float, duration: float, bodies: Bodies | None,
                connections: int = 64) -> dict[str, Any]:
    """One fixed-rate run of bench/loadgen.py in its own process."""
    cmd = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path", path, "--rate", f"{rate:.2f}",
           "--duration", str(duration), "--connections", str(connections)]
    if bodies:
        cmd += ["--bodies", str(bodies.path), "--offset", str(bodies.pos)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=duration + 120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed: {proc.stderr.strip()[-500:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if bodies:
        bodies.advance(out["scheduled"])
    return out


def sweep(url: str, levels: list[int], duration: float, bodies: Bodies | None) -> list[dict[str, Any]]:
    rows = []
    name = url.split("/", 3)[3]
    for c in levels:
        row = run_wrk(url, c, duration, bodies)
        log(f"  /{name} c={c}: {row['rps']} req/s, p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms"
            + (f", errors {row['errors']}" if row["errors"] else ""))
        rows.append(row)
    return rows


def closest_to(rows: list[dict[str, Any]], target: float) -> dict[str, Any]:
    return min(rows, key=lambda r: abs(r["rps"] - target))


def run_http(label: str, db_url: str, data_dir: Path, model: dict[str, Any], messages: list[str], workdir: Path,
             levels: list[int], duration: float, fixed_rate_duration: float) -> dict[str, Any]:
    """Sweep GET /livez and POST /v1/chat over `levels` connections against one server on `db_url`."""
    workdir.mkdir(parents=True, exist_ok=True)
    texts = distinct_variants(messages)
    bodies = Bodies(write_bodies(workdir / f"bodies-{label}.jsonl", texts))
    server = Server(server_env(data_dir, model, db_url), workdir / f"server-{label}.log")
    out: dict[str, Any] = {"database": label, "embedder": model["embedder"], "levels": levels,
                           "seconds_per_level": duration, "sessions": "a new session for every request",
                           "distinct_texts": len(texts)}
    with server.start():
        out["first_answer_s"] = round(server.wait_first_answer(), 3)
        # warm-up, not recorded: connections, thread pool, database pool, caches of the server's code
        run_wrk(server.url + "/v1/chat", 4, 2, bodies)
        run_wrk(server.url + "/livez", 4, 1, None)
        out["livez"] = sweep(server.url + "/livez", levels, duration, None)
        out["chat"] = sweep(server.url + "/v1/chat", levels, duration, bodies)
        sat_livez = max(r["rps"] for r in out["livez"])
        sat_chat = max(r["rps"] for r in out["chat"])
        out["saturation_rps"] = {"livez": sat_livez, "chat": sat_chat, "livez_over_chat": ratio(sat_livez, sat_chat)}
        c1_chat = next((r for r in out["chat"] if r["connections"] == 1), out["chat"][0])
        c1_livez = next((r for r in out["livez"] if r["connections"] == 1), out["livez"][0])
        out["c1_p50_ms"] = {"livez": c1_livez["p50_ms"], "chat": c1_chat["p50_ms"],
                            "chat_over_livez": ratio(c1_chat["p50_ms"], c1_livez["p50_ms"])}
        half: dict[str, Any] = {}
        # chat at half of its own saturation: fixed rate, open loop
        target = round(sat_chat / 2, 1)
        lg = run_loadgen(server.port, "/v1/chat", target, fixed_rate_duration, bodies)
        near = closest_to(out["chat"], target)
        half["chat_at_half_chat_saturation"] = {
            "rate": target, "fixed_rate": lg,
            "closest_wrk_level": {"connections": near["connections"], "rps": near["rps"], "p99_ms": near["p99_ms"]}}
        log(f"  chat at {target} req/s (half its saturation): p99 {lg['p99_ms']} ms (fixed rate)")
        # chat at half of the trivial endpoint's saturation
        target2 = round(sat_livez / 2, 1)
        near2 = closest_to(out["chat"], target2)
        entry: dict[str, Any] = {"rate": target2, "closest_wrk_level": {
            "connections": near2["connections"], "rps": near2["rps"], "p99_ms": near2["p99_ms"]}}
        if target2 <= 0.9 * sat_chat:
            entry["fixed_rate"] = run_loadgen(server.port, "/v1/chat", target2, fixed_rate_duration, bodies)
        else:
            entry["fixed_rate"] = None
            entry["note"] = (f"not sustainable: chat saturates at {sat_chat} req/s, below this rate; at this "
                             "offered load the queue (and so the p99) grows without bound for as long as it lasts")
        half["chat_at_half_livez_saturation"] = entry
        # the trivial endpoint at half its saturation (closest wrk level; the Python generator may not keep up)
        target3 = round(sat_livez / 2, 1)
        near3 = closest_to(out["livez"], target3)
        lg3 = run_loadgen(server.port, "/livez", target3, fixed_rate_duration, None)
        half["livez_at_half_livez_saturation"] = {
            "rate": target3, "fixed_rate": lg3,
            "closest_wrk_level": {"connections": near3["connections"], "rps": near3["rps"], "p99_ms": near3["p99_ms"]}}
        out["half_saturation"] = half
        out["server_memory_kb_after_load"] = server.memory_kb()
    out["vector_cache"] = (f"{len(texts)} distinct texts sent in order across all runs (warm-up included), "
                           f"{bodies.sent} taken: " + ("no text repeated, so the embedder's cache never answered"
                                                       if bodies.sent <= len(texts) else
                                                       "texts repeated: some embeddings came from the cache"))
    return out
