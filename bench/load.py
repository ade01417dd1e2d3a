"""Sustained load on the embedded default (issue 18, item 1): POST /v1/chat on SQLite for a minute.

One real server (the default model, a fresh SQLite file, rate limits raised), wrk closed loop at 4,
16 and 64 connections, each request a new session (every chat stores a session and two messages),
with wrk's own 2-second timeout as the issue measured. The targets are ratios of kefu with itself:
p99 over p50 at most 4 at 16 and 64 connections, throughput at 16 and 64 connections not below
that at 4, and no error nor timeout. `ab` runs the same levels against another checkout's code
first (`python -m bench --only load --ab REV`), back to back with this one on the same model and
messages: on a shared machine only such a pair compares.
"""

from __future__ import annotations

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


def sustained(label: str, db_url: str, data_dir: Path, model: dict[str, Any], messages: list[str], workdir: Path,
              levels: dict[int, float], code: Path = ROOT) -> dict[str, Any]:
    """wrk on POST /v1/chat at each level (connections -> seconds) against one server running `code`."""
    workdir.mkdir(parents=True, exist_ok=True)
    bodies = Bodies(write_bodies(workdir / f"bodies-load-{label}.jsonl", distinct_variants(messages)))
    server = Server(server_env(data_dir, model, db_url), workdir / f"server-load-{label}.log", cwd=code)
    rows = []
    with server.start():
        first = server.wait_first_answer()
        run_wrk(server.url + "/v1/chat", 4, 3, bodies, timeout=WRK_TIMEOUT)  # warm-up, not recorded
        for c, seconds in levels.items():
            row = run_wrk(server.url + "/v1/chat", c, seconds, bodies, timeout=WRK_TIMEOUT)
            row["p99_over_p50"] = ratio(row["p99_ms"], row["p50_ms"])
            log(f"  load {label} c={c} {seconds:g}s: {row['rps']} req/s, p50 {row['p50_ms']} ms, "
                f"p99 {row['p99_ms']} ms" + (f", errors {row['errors']}" if row["errors"] else ""))
            rows.append(row)
    return {"label": label, "code": str(code), "first_answer_s": round(first, 3), "levels": rows,
            "targets": targets(rows)}


def checkout(rev: str, into: Path) -> Path:
    """The tree of git revision `rev` of this repository, unpacked into `into` (no history)."""
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as fh:
        subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=fh, check=True, timeout=120)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(into, filter="data")
    return into


Fresh = Callable[[], tuple[str, Callable[[], None]]]  # a fresh database: its URL, and what drops it


def run_load(data_dir: Path, model: dict[str, Any], messages: list[str], workdir: Path, levels: dict[int, float],
             databases: dict[str, Fresh], ab: str | None = None) -> dict[str, Any]:
    """The sustained run on each database of `databases` (label -> what makes a fresh one: its URL and
    what drops it); with `ab`, the code of that git revision first, then this checkout's, each on a
    fresh database, back to back."""
    out: dict[str, Any] = {"levels": {str(c): s for c, s in levels.items()}, "wrk_timeout_s": WRK_TIMEOUT,
                           "sessions": "a new session for every request"}
    code = checkout(ab, workdir / f"code-{ab}") if ab else None
    for db, make in databases.items():
        before = None
        if code is not None:
            url, drop = make()
            try:
                before = sustained(f"{db}-{ab}", url, data_dir, model, messages, workdir, levels, code)
            finally:
                drop()
        url, drop = make()
        try:
            after = sustained(db, url, data_dir, model, messages, workdir, levels)
        finally:
            drop()
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
