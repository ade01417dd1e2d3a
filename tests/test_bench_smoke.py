"""Smoke test of the benchmark suite (bench/): it runs and its results have the expected shape.

No timing assertions: figures depend on the machine. The benchmark itself is `python -m bench`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import report
from bench.common import DATA, distinct_variants, load_messages, summarize_ms, train_model
from bench.inproc import bench_reply, bench_segmentation, breakdown
from bot.language.normalize import normalize


def test_messages_file_is_realistic_and_distinct() -> None:
    messages = load_messages()
    assert len(messages) >= 200
    assert len(set(messages)) == len(messages)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in m) for m in messages if not m.isascii())


def test_variants_never_repeat_after_normalisation() -> None:
    texts = distinct_variants(load_messages()[:20])
    keys = [normalize(t) for t in texts]
    assert len(texts) > 1000
    assert len(set(keys)) == len(keys)


def test_summary_has_percentiles() -> None:
    out = summarize_ms([0.001, 0.002, 0.003])
    assert {"p50_ms", "p99_ms", "mean_ms", "n"} <= set(out)


@pytest.mark.slow
def test_inprocess_classifier_part_runs(tmp_path: Path) -> None:
    from bot.loader import load_bot

    info = train_model(DATA, tmp_path / "models", "none", folds=2)
    bot = load_bot(DATA, Path(info["models_dir"]), embedder="none")
    messages = load_messages()[:10]
    out = bench_reply(bot, messages)
    assert {"p50_ms", "p99_ms", "msgs_per_s"} <= set(out)
    assert out["n"] == 10
    assert {"p50_ms", "p99_ms"} <= set(bench_segmentation(messages))
    # one classifier call per reply; a message of two questions ranks three texts in it
    stages = breakdown(bot, [*messages[:3], "什么时候发货？包邮吗"])
    assert "model_rank_total" in stages
    assert stages["rank_calls_per_reply"] == 1
    assert stages["texts_ranked_per_reply"] == (3 + 3) / 4


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_fixed_rate_loadgen_runs_on_loopback() -> None:
    from bench.loadgen import run

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = asyncio.run(run(server.server_address[1], "/", rate=40, duration=0.5, bodies=[], conns=2, timeout=5))
    finally:
        server.shutdown()
        server.server_close()
    assert out["scheduled"] == 20
    assert out["completed"] + out["errors"] == 20
    assert {"p50_ms", "p99_ms", "achieved_rps"} <= set(out)


def _fake_http(db: str) -> dict:
    rows = [{"connections": c, "rps": 100.0 * c, "p50_ms": 1.0 * c, "p90_ms": 2.0 * c, "p99_ms": 3.0 * c,
             "mean_ms": 1.0, "max_ms": 5.0, "requests": 10, "seconds": 1.0, "errors": {}} for c in (1, 4)]
    fixed = {"p99_ms": 2.0, "achieved_rps": 200.0, "completed": 10}
    near = {"connections": 4, "rps": 400.0, "p99_ms": 12.0}
    return {"database": db, "embedder": "none", "seconds_per_level": 1, "livez": rows, "chat": rows,
            "saturation_rps": {"livez": 400.0, "chat": 400.0, "livez_over_chat": 1.0},
            "c1_p50_ms": {"livez": 1.0, "chat": 1.0, "chat_over_livez": 1.0},
            "half_saturation": {"chat_at_half_chat_saturation": {"rate": 200.0, "fixed_rate": fixed,
                                                                 "closest_wrk_level": near},
                                "chat_at_half_livez_saturation": {"rate": 200.0, "fixed_rate": None, "note": "n/a",
                                                                  "closest_wrk_level": near},
                                "livez_at_half_livez_saturation": {"rate": 200.0, "fixed_rate": fixed,
                                                                   "closest_wrk_level": near}}}


def test_report_writes_json_markdown_and_png(tmp_path: Path) -> None:
    res = {"meta": {"quick": True}, "http_sqlite": _fake_http("sqlite"), "http_postgres": _fake_http("postgres"),
           "notes": ["a note"]}
    paths = report.write(res, tmp_path)
    assert json.loads(Path(paths["json"]).read_text(encoding="utf-8"))["http_sqlite"]["database"] == "sqlite"
    assert "| conns |" in Path(paths["md"]).read_text(encoding="utf-8")
    assert Path(paths["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_figures_bench_fills_a_history_and_reads_it(tmp_path: Path) -> None:
    from bench.analytics import run_analytics

    out = run_analytics({"sqlite": lambda: (f"sqlite:///{tmp_path / 'a.db'}", lambda: None)}, 3_000)
    r = out["sqlite"]
    assert r["written"]["messages"] == 3_000 and r["written"]["handoffs"] > 0 and r["written"]["orders"] > 0
    # 30 of the history's 60 days: about half its sessions, each of five bot turns or three
    assert 0.3 * 300 < r["conversations"] < 0.7 * 300 and r["bot_turns"] >= 3 * r["conversations"]
    assert {"seconds_min", "seconds_median", "fill_seconds"} <= set(r)
    assert "| database | messages |" in report.markdown({"analytics": out})


def _level(c: int, rps: float, p50: float, p99: float, **errors: int) -> dict:
    return {"connections": c, "seconds": 1.0, "rps": rps, "p50_ms": p50, "p99_ms": p99, "p99_over_p50": p99 / p50,
            "errors": errors}


def test_the_load_targets_are_ratios_of_kefu_with_itself() -> None:
    from bench.load import targets

    good = targets([_level(4, 100.0, 30.0, 60.0), _level(16, 120.0, 100.0, 200.0), _level(64, 110.0, 400.0, 900.0)])
    assert all(t["met"] for t in good.values())
    assert good["p99_over_p50_c64"]["value"] == 2.25 and good["rps_c16_over_c4"]["value"] == 1.2
    bad = targets([_level(4, 100.0, 30.0, 60.0), _level(16, 90.0, 100.0, 900.0, timeout=2)])
    assert not bad["p99_over_p50_c16"]["met"] and not bad["rps_c16_over_c4"]["met"]
    assert bad["errors_and_timeouts"] == {"value": 2, "timeouts": 2, "target": "0", "met": False}


def test_a_load_level_is_its_rounds_together() -> None:
    from bench.load import merged

    rounds = [{**_level(16, 0.0, p50, p99), "requests": n, "seconds": 20.0}
              for n, p50, p99 in ((2000, 50.0, 90.0), (3000, 40.0, 300.0), (2600, 45.0, 80.0))]
    rounds[1]["errors"] = {"timeout": 2}
    rounds[2]["errors"] = {"timeout": 1, "status": 3}
    row = merged(16, rounds)
    assert row["rps"] == 126.7 and row["requests"] == 7600 and row["seconds"] == 60.0  # requests over seconds
    assert row["p50_ms"] == 45.0 and row["p99_ms"] == 300.0 and row["p99_over_p50"] == 6.67  # median, worst
    assert row["errors"] == {"timeout": 3, "status": 3} and row["rounds"] == rounds


def test_report_shows_the_load_ab_and_the_first_run() -> None:
    from bench.load import targets

    before = [_level(4, 100.0, 30.0, 90.0), _level(16, 150.0, 80.0, 900.0, timeout=1)]
    after = [_level(4, 110.0, 30.0, 60.0), _level(16, 160.0, 90.0, 180.0)]
    load = {"wrk_timeout_s": 2.0, "sqlite": {"levels": after, "targets": targets(after), "ab": "abc",
                                             "database": "each run on a fresh database",
                                             "before": {"levels": before, "targets": targets(before)},
                                             "after_over_before": {"c16": {"rps": 1.07, "p50": 1.1, "p99": 0.2}}}}
    run = {"first_answer_s": 50.0, "serving_s": 48.0, "longest_silence_s": 20.0,
           "lines": [{"s": 1.0, "line": "kefu: no model yet"}]}
    text = report.markdown({"load": load, "firstrun": {"ab": "abc", "before": {**run, "first_answer_s": 120.0},
                                                       "after": run, "after_over_before": 0.417}})
    assert "| before abc | 16 |" in text and "| after | 16 |" in text and "timeout 1" in text
    assert "How: each run on a fresh database." in text
    assert "| p99 over p50 c16 | 2.00 | <= 4 | yes |" in text  # the targets of this checkout's run
    assert "0.417 (target at most 0.5: met)" in text and "kefu: no model yet" in text


def test_report_shows_serving_against_the_engine_and_the_start() -> None:
    level = {**_level(16, 300.0, 50.0, 120.0), "in_process_msgs_per_s": 400.0, "http_over_in_process": 0.75,
             "cpu_ms_per_request": 2.5, "in_process_cpu_ms_per_chat": 1.9, "cpu_in_process_over_http": 0.76}
    run = {"levels": [level], "best": 0.75, "met": True}
    serving = {"messages": 209, "levels": {"16": 15.0}, "in_process_seconds": 8.0, "target": 0.6,
               "sqlite": {"before abc": {**run, "levels": [{**level, "rps": 150.0, "http_over_in_process": 0.38}]},
                          "after": run},
               "start": {"target_s": 3.0, "before abc": {"runs_s": [4.9], "median_s": 4.9, "median_cpu_s": 3.4,
                                                         "met": False},
                         "after": {"runs_s": [2.8], "median_s": 2.8, "median_cpu_s": 2.6, "met": True}}}
    text = report.markdown({"serving": serving})
    assert "| sqlite | before abc | 16 | 150.00 |" in text and "| 0.38 | 0.60 |" in text
    assert "| sqlite | after | 16 | 300.00 | 50.00 | 120.00 | 400.00 | 0.75 | 0.60 | 2.50 | 1.90 | 0.76 |" in text
    assert "| before abc | 4.90 | 4.90 | 3.40 | 3.00 | NO |" in text
    assert "| after | 2.80 | 2.80 | 2.60 | 3.00 | yes |" in text


def test_report_shows_two_workers_over_one() -> None:
    from bench.workers import targets

    rows = [{**_level(16, 100.0, 150.0, 400.0), "workers": 1, "ready_s": 9.0},
            {**_level(16, 180.0, 90.0, 300.0), "workers": 2, "ready_s": 12.0}]
    got = targets(rows)
    assert got["rps_2_workers_over_1"] == {"value": 1.8, "target": ">= 1.7", "met": True} and got["errors"]["met"]
    slow = targets([rows[0], {**rows[1], "rps": 150.0, "errors": {"timeout": 1}}])
    assert not slow["rps_2_workers_over_1"]["met"] and slow["errors"]["value"] == 1 and not slow["errors"]["met"]
    text = report.markdown({"workers": {"connections": 16, "seconds": 20.0, "cores": 2, "levels": rows,
                                        "targets": got}})
    assert "| 2 | 180.00 | 90.00 | 300.00 |" in text and "| rps 2 workers over 1 | 1.80 | >= 1.7 | yes |" in text


def test_a_catalogue_size_that_fails_is_a_row_and_the_other_sizes_go_on(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import growth

    tried: list[str] = []

    def fails(kind: str, data_dir: Path, *args: object, **kwargs: object) -> dict[str, object]:
        tried.append(data_dir.name)
        raise RuntimeError(f"training ({kind}) failed: killed")

    monkeypatch.setattr(growth, "train_subprocess", fails)
    rows = growth.catalogue_growth(DATA, tmp_path, ["包邮吗"], [1, 2], "none", 2, full_train_max=2)
    assert tried == ["data-x1", "data-x2"]
    failed = "failed: training (train) failed: killed"
    assert [(r["factor"], r["skipped"]) for r in rows] == [(1, failed), (2, failed)]
    assert all(r["entries"] for r in rows) and not any(tmp_path.iterdir())  # the scaled data removed
    md = report.markdown({"meta": {}, "growth": {"catalogue": rows}, "notes": []})
    assert md.count(failed) == 2


def test_report_shows_x16_against_its_target() -> None:
    def row(seconds: float, gib: float) -> dict[str, object]:
        return {"factor": 16, "embedder": "none", "entries": 432, "examples": 77072, "train_s": seconds,
                "train_kind": "full train", "peak_rss_bytes": int(gib * 2**30), "model_bytes": 5e8}

    met = report.markdown({"growth": {"catalogue": [row(537.0, 3.31)]}})
    assert "- x16 none: full train 537.0 s, peak RSS 3.31 GiB (target within 20 minutes and 8 GiB: met)" in met
    assert "8 GiB: not met" in report.markdown({"growth": {"catalogue": [row(537.0, 9.0)]}})
    assert "8 GiB: not met" in report.markdown({"growth": {"catalogue": [row(1300.0, 3.0)]}})
