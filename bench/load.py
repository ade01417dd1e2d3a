"""Sustained load on the embedded default (issue 18, item 1): POST /v1/chat on SQLite for a minute.

A real server (the default model, rate limits raised) for each level, wrk closed loop at 4, 16 and
64 connections, each request a new session (every chat stores a session and two messages), with
wrk's own 2-second timeout as the issue measured. Each level runs as long as the others, in rounds
(4, 16, 64, then again), each run on a new server and a fresh database: a quarter of the messages hand
off and stay waiting (no agent takes them), so on one database each level would start behind a longer
queue than the one before, and throughput would fall with the time the run has lasted as well as with
the connections (the stored sessions' growth is measured apart, `bench.growth`); and a shared machine
drifts over minutes, which rounds spread over every level alike. A level's figures are its rounds'
together: requests over seconds, the median p50, the worst p99. The targets are ratios of kefu with itself:
p99 over p50 at most 4 at 16 and 64 connections, throughput at 16 and 64 connections not below
that at 4, and no error nor timeout. `ab` runs the same levels against another checkout's code
first (`python -m bench --only load --ab REV`), back to back with this one on the same model and
messages: on a shared machine only such a pair compares.
"""

from __future__ import annotations

import statistics
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ROOT, Server, distinct_variants, log, ratio, write_bodies
from bench.httpload import Bodies, run_wrk, server_env

P99_OVER_P50 = 4.0  # the target, at 16 and 64 connections
WRK_TIMEOUT = 2.0  # wrk's default: a request unanswered in 2 s is a timeout
ROUNDS = 3  # each level in this many runs, the levels taking turns
Fresh = Callable[[], tuple[str, Callable[[], None]]]  # a fresh database: its URL, and what drops it


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The item's targets, each with its figure: p99/p50 per level, throughput against 4 connections,
    errors and timeouts; `met` for each."""
    by_c = {r["connections"]: r for r in rows}
    base = by_c.get(min(by_c))
    out: dict[str, Any] = {}
    for c, r in sorted(by_c.items()):
        if c == min(by_c):
            continue
        tail = ratio(r["p99_ms"], r["p50_ms"])
        out[f"p99_over_p50_c{c}"] = {"value": tail, "target": f"<= {P99_OVER_P50:g}",
                                     "met": tail is not None and tail <= P99_OVER_P50}
        keep = ratio(r["rps"], base["rps"]) if base else None
        out[f"rps_c{c}_over_c{min(by_c)}"] = {"value": keep, "target": ">= 1 (does not fall)",
                                              "met": keep is not None and keep >= 1.0}
    errors = sum(sum(r["errors"].values()) for r in rows)
    timeouts = sum(r["errors"].get("timeout", 0) for r in rows)
    out["errors_and_timeouts"] = {"value": errors, "timeouts": timeouts, "target": "0", "met": errors == 0}
    return out


def sustained(label: str, make: Fresh, data_dir: Path, model: dict[str, Any], messages: list[str], workdir: Path,
              levels: dict[int, float], code: Path = ROOT, rounds: int = ROUNDS) -> dict[str, Any]:
    """wrk on POST /v1/chat at each level (connections -> seconds, split into `rounds`), each run against
    a new server running `code` on a fresh database from `make`."""
    workdir.mkdir(parents=True, exist_ok=True)
    bodies = Bodies(write_bodies(workdir / f"bodies-load-{label}.jsonl", distinct_variants(messages)))
    runs: dict[int, list[dict[str, Any]]] = {c: [] for c in levels}
    first = []
    for n in range(rounds):
        for c, seconds in levels.items():
            url, drop = make()
            try:
                server = Server(server_env(data_dir, model, url), workdir / f"server-load-{label}-{n}-c{c}.log",
                                cwd=code)
                with server.start():
                    first.append(server.wait_first_answer())
                    run_wrk(server.url + "/v1/chat", 4, 3, bodies, timeout=WRK_TIMEOUT)  # warm-up, not recorded
                    row = run_wrk(server.url + "/v1/chat", c, seconds / rounds, bodies, timeout=WRK_TIMEOUT)
            finally:
                drop()
            log(f"  load {label} round {n + 1}/{rounds} c={c} {seconds / rounds:g}s: {row['rps']} req/s, p50 "
                f"{row['p50_ms']} ms, p99 {row['p99_ms']} ms" + (f", errors {row['errors']}" if row["errors"] else ""))
            runs[c].append(row)
    rows = [merged(c, runs[c]) for c in levels]
    return {"label": label, "code": str(code), "first_answer_s": round(first[0], 3) if first else None,
            "database": f"the levels taking turns, {rounds} round(s), each run on a new server and a fresh database; "
                        "a level's req/s is its runs' requests over their seconds, its p50 their median, its p99 "
                        "their worst",
            "levels": rows, "targets": targets(rows)}


def merged(connections: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One level's rounds as one row: requests over seconds, the median p50, the worst p99, every error."""
    requests, seconds = sum(r["requests"] for r in runs), sum(r["seconds"] for r in runs)
    p50, p99 = round(statistics.median(r["p50_ms"] for r in runs), 3), max(r["p99_ms"] for r in runs)
    errors: dict[str, int] = {}
    for r in runs:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {"connections": connections, "requests": requests, "seconds": round(seconds, 2),
            "rps": round(requests / seconds, 1) if seconds else 0.0, "p50_ms": p50, "p99_ms": p99,
            "p99_over_p50": ratio(p99, p50), "errors": errors, "rounds": runs}


def checkout(rev: str, into: Path) -> Path:
    """The tree of git revision `rev` of this repository, unpacked into `into` (no history)."""
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as fh:
        subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=fh, check=True, timeout=120)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(into, filter="data")
    return into


def run_load(data_dir: Path, model: dict[str, Any], messages: list[str], workdir: Path, levels: dict[int, float],
             databases: dict[str, Fresh], ab: str | None = None, rounds: int = ROUNDS) -> dict[str, Any]:
    """The sustained run on each database of `databases` (label -> what makes a fresh one: its URL and
    what drops it); with `ab`, the code of that git revision first, then this checkout's, back to back."""
    out: dict[str, Any] = {"levels": {str(c): s for c, s in levels.items()}, "wrk_timeout_s": WRK_TIMEOUT,
                           "sessions": "a new session for every request"}
    code = checkout(ab, workdir / f"code-{ab}") if ab else None
    for db, make in databases.items():
        before = None
        if code is not None:
            before = sustained(f"{db}-{ab}", make, data_dir, model, messages, workdir, levels, code, rounds)
        after = sustained(db, make, data_dir, model, messages, workdir, levels, rounds=rounds)
        out[db] = after if before is None else {**after, "before": before, "ab": ab,
                                                "after_over_before": _compare(before, after)}
    return out


def _compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Per level: throughput and p99 of this checkout over those of the other (same run, same machine)."""
    out = {}
    for b, a in zip(before["levels"], after["levels"], strict=True):
        out[f"c{a['connections']}"] = {"rps": ratio(a["rps"], b["rps"]), "p50": ratio(a["p50_ms"], b["p50_ms"]),
                                       "p99": ratio(a["p99_ms"], b["p99_ms"])}
    return out
