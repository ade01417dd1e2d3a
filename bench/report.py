"""Write the results: results.json (everything), results.md (short tables), latency.png (latency against load)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Issue 18, item 3: the catalogue at 16 times trains in full within 20 minutes and 8 GiB.
X16, X16_SECONDS, X16_BYTES = 16, 20 * 60, 8 * 2**30


def _f(x: Any, nd: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(_f(c) for c in r) + " |" for r in rows]
    return out + [""]


def markdown(res: dict[str, Any]) -> str:
    m = res.get("meta", {})
    mach, data = m.get("machine", {}), m.get("data", {})
    lines = [f"# kefu benchmark{' (quick)' if m.get('quick') else ''}", "",
             f"{m.get('started', '')}, {mach.get('cpu', '?')}, {mach.get('cores', '?')} cores, Python "
             f"{mach.get('python', '?')}; data: {data.get('entries', '?')} entries, {data.get('examples', '?')} "
             f"examples; whole run {m.get('total_s', '?')} s.", ""]
    ip = res.get("inprocess")
    if ip and "embedders" in ip:
        lines += ["## Classifier in process (Bot.reply, one message at a time)", "",
                  f"{ip['messages']} messages x {ip['passes']} passes; {ip['vector_cache']}.", ""]
        seg = ip["segmentation"]
        rows = [[f"{name}{' (default)' if r.get('default') else ''}", r["p50_ms"], r["p99_ms"], r["msgs_per_s"],
                 r["cached"]["p50_ms"], r["ratio_to_segmentation"]["p50"], r.get("ratio_to_none", {}).get("p50")]
                for name, r in ip["embedders"].items()]
        rows.append(["jieba alone: cut(normalize(t))", seg["p50_ms"], seg["p99_ms"], seg["msgs_per_s"], None, 1.0,
                     None])
        lines += _table(["embedder", "p50 ms", "p99 ms", "msg/s", "p50 ms, cache warm", "x jieba (p50)",
                         "x none (p50)"], rows)
        stages = sorted({k for r in ip["embedders"].values() for k in r["breakdown_ms"]})
        lines += ["Mean ms per message, each stage timed alone (`pipe.*` are the model's steps; "
                  "`rank_calls_per_reply` counts classifier calls per reply, "
                  "`texts_ranked_per_reply` the texts they rank):", ""]
        lines += _table(["stage", *ip["embedders"]], [[s, *[r["breakdown_ms"].get(s) for r in ip["embedders"].values()]]
                                                      for s in stages])
        layers = ip.get("chat_layers")
        if layers:
            lines += ["One chat turn in process, without HTTP (default embedder, a new session per message):", ""]
            lines += _table(["layer", "p50 ms", "p99 ms", "mean ms", "transactions", "statements"],
                            [[k.replace("_", " "), v["p50_ms"], v["p99_ms"], v["mean_ms"],
                              v.get("transactions_per_chat"), v.get("statements_per_chat")]
                             for k, v in layers.items()])
        for note in ip.get("notes", []):
            lines += [f"- {note}"]
        if ip.get("notes"):
            lines.append("")
    for key in ("http_sqlite", "http_postgres"):
        h = res.get(key)
        if not h:
            continue
        if "error" in h or "skipped" in h:
            lines += [f"## HTTP, {key[5:]}", "", f"{h.get('error') or h.get('skipped')}", ""]
            continue
        lines += [f"## HTTP, {h['database']} (wrk, {h['seconds_per_level']} s per level, embedder {h['embedder']})", ""]
        rows = []
        for lv, ch in zip(h["livez"], h["chat"], strict=True):
            rows.append([lv["connections"], lv["rps"], lv["p50_ms"], lv["p99_ms"], ch["rps"], ch["p50_ms"],
                         ch["p99_ms"], round(lv["rps"] / ch["rps"], 1) if ch["rps"] else None,
                         ", ".join(f"{k} {v}" for k, v in {**lv["errors"], **ch["errors"]}.items()) or ""])
        lines += _table(["conns", "livez req/s", "livez p50 ms", "livez p99 ms", "chat req/s", "chat p50 ms",
                         "chat p99 ms", "livez/chat req/s", "errors"], rows)
        s, hs = h["saturation_rps"], h["half_saturation"]
        a = hs["chat_at_half_chat_saturation"]
        b = hs["chat_at_half_livez_saturation"]
        c = hs["livez_at_half_livez_saturation"]
        lines += [f"- saturation: livez {s['livez']} req/s, chat {s['chat']} req/s (ratio {s['livez_over_chat']}); "
                  f"at 1 connection chat p50 is {h['c1_p50_ms']['chat_over_livez']}x livez's.",
                  f"- chat p99 at half its own saturation ({a['rate']} req/s, fixed rate): "
                  f"{_f(a['fixed_rate']['p99_ms'])} ms (closest wrk level: "
                  f"{a['closest_wrk_level']['connections']} conns, p99 {a['closest_wrk_level']['p99_ms']} ms).",
                  f"- chat at half livez's saturation ({b['rate']} req/s): " + (
                      f"p99 {_f(b['fixed_rate']['p99_ms'])} ms (fixed rate)" if b.get("fixed_rate")
                      else b.get("note", "")),
                  f"- livez p99 at half its saturation ({c['rate']} req/s): {_f(c['fixed_rate']['p99_ms'])} ms fixed "
                  f"rate (generator reached {c['fixed_rate']['achieved_rps']} req/s); closest wrk level "
                  f"{c['closest_wrk_level']['connections']} conns, p99 {c['closest_wrk_level']['p99_ms']} ms.", ""]
    lines += _load(res.get("load"))
    lines += _first_run(res.get("firstrun"))
    from bench.serving import markdown as serving  # bench.serving uses this module's tables

    lines += serving(res.get("serving"))
    from bench.workers import markdown as workers

    lines += workers(res.get("workers"))
    fp = res.get("footprint")
    if fp and "servers" in fp:
        lines += ["## Footprint (fresh server, SQLite)", "",
                  f"`import api.main` in a fresh interpreter: {fp['import_api_s']} s.", ""]
        rows = [[n, r["first_answer_s"], r["rss_mb"], r["peak_rss_mb"], round(r["model_bytes"] / 1e6, 2),
                 round(r["scorer_bytes"] / 1e6, 2) if r.get("scorer_bytes") else None,
                 round(r["embedder_weights"]["bytes"] / 1e6, 1) if r.get("embedder_weights") else None]
                for n, r in fp["servers"].items()]
        lines += _table(["embedder", "start to first chat s", "RSS MB", "peak RSS MB", "pipeline.joblib MB",
                         "scorer.joblib MB (served)", "embedder weights MB"], rows)
    g = res.get("growth", {})
    catalogue_title = "## Growth with the catalogue (synthetic copies, perturbed examples)"
    if isinstance(g.get("catalogue"), dict):  # the section failed as a whole
        lines += [catalogue_title, "", str(g["catalogue"].get("error") or g["catalogue"].get("skipped")), ""]
    elif g.get("catalogue"):
        lines += [catalogue_title, ""]
        rows = [[f"x{r['factor']} {r['embedder']}", r.get("entries"), r.get("examples"),
                 r.get("train_s", r.get("fit_s")), r.get("train_kind", r.get("skipped")),
                 round(r["peak_rss_bytes"] / 2**30, 2) if r.get("peak_rss_bytes") else None,
                 r.get("p50_ms"), r.get("p99_ms"), round(r["model_bytes"] / 1e6, 1) if r.get("model_bytes") else None]
                for r in g["catalogue"]]
        lines += _table(["size", "entries", "examples", "train s", "what was timed", "peak RSS GiB", "reply p50 ms",
                         "reply p99 ms", "model MB"], rows)
        notes = []
        for r in g["catalogue"]:
            b = r.get("before")
            if b:
                notes += [f"- x{r['factor']} {r['embedder']}: revision {b['ab']}'s full train {b['train_s']} s "
                          f"(peak RSS {b['peak_rss_bytes'] / 2**30:.2f} GiB) just before; this code's over it "
                          f"{r.get('train_s_over_before')} (target under 0.5)"]
            if r["factor"] == X16 and r.get("train_s") is not None:  # issue 18, item 3
                met = r["train_s"] <= X16_SECONDS and r["peak_rss_bytes"] <= X16_BYTES
                notes += [f"- x16 {r['embedder']}: full train {r['train_s']} s, peak RSS "
                          f"{r['peak_rss_bytes'] / 2**30:.2f} GiB (target within {X16_SECONDS / 60:.0f} minutes "
                          f"and {X16_BYTES / 2**30:.0f} GiB: {'met' if met else 'not met'})"]
        lines += [*notes, ""] if notes else []
    if g.get("sessions"):
        lines += [f"## Growth with stored sessions ({g.get('sessions_db', 'sqlite')}, wrk)", ""]
        rows = [[r["stored_sessions"], r["messages"], r["handoffs"], r["insert_s"], r["new_session_c1"]["p50_ms"],
                 r["new_session_c1"]["p99_ms"], r["stored_session_c1"]["p50_ms"], r["stored_session_c1"]["p99_ms"],
                 r["new_session_c16"]["rps"]] for r in g["sessions"]]
        lines += _table(["sessions", "messages", "handoffs", "insert s", "new p50 ms (c1)", "new p99 ms (c1)",
                         "stored p50 ms (c1)", "stored p99 ms (c1)", "req/s (c16)"], rows)
    t = res.get("training")
    if t:
        lines += ["## Training", ""]
        if "seconds" in t:
            lines += [f"`{t['command']}` (default embedder, cross-validation, held-out gate, report): "
                      f"{t['seconds']} s (exit {t['returncode']}).", ""]
            c = t.get("console")
            if c:
                lines += [f"`{c['command']}` (the console's run: three folds, no embedder comparison): "
                          f"{c['seconds']} s ({c['status']}), {t['console_ratio']} of `kefu train`, same run.", ""]
        else:
            lines += [str(t.get("skipped") or t.get("error")), ""]
        for name, m in res.get("models", {}).items():
            lines.append(f"- `train(report=False)` {name}: {m['seconds']} s")
        lines.append("")
    an = res.get("analytics")
    if an:
        lines += [f"## The shop's figures over a history of {an.get('messages', 0):,} messages", ""]
        rows = [[db, r["written"]["messages"], r["written"]["sessions"], r["fill_seconds"], r["days"],
                 r["seconds_min"], r["seconds_median"]] for db, r in an.items() if isinstance(r, dict) and "days" in r]
        lines += _table(["database", "messages", "sessions", "fill s", "days", "stats s (best)", "stats s (median)"],
                        rows) if rows else [str(an.get("error") or an), ""]
    notes = res.get("notes", [])
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _load(ld: dict[str, Any] | None) -> list[str]:
    """The sustained load on each database (bench/load.py): levels, the A/B pair, and the targets."""
    if not ld:
        return []
    if "error" in ld or "skipped" in ld:
        return ["## Sustained load", "", str(ld.get("error") or ld.get("skipped")), ""]
    lines: list[str] = []
    for db, run in ld.items():
        if not isinstance(run, dict) or "levels" not in run:
            continue
        lines += [f"## Sustained load, {db} (POST /v1/chat, wrk, {ld['wrk_timeout_s']:g} s timeout, a new session "
                  "a request)", ""]
        if run.get("database"):
            lines += [f"How: {run['database']}.", ""]
        pairs = [("before " + str(run["ab"]), run["before"]), ("after", run)] if run.get("before") else [("", run)]
        rows = [[code or db, r["connections"], r["seconds"], r["rps"], r["p50_ms"], r["p99_ms"], r["p99_over_p50"],
                 ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"]
                for code, one in pairs for r in one["levels"]]
        lines += _table(["code", "conns", "s", "req/s", "p50 ms", "p99 ms", "p99/p50", "errors"], rows)
        if run.get("after_over_before"):
            lines += ["After over before, same run, back to back (a shared machine: only ratios compare):", ""]
            lines += _table(["conns", "req/s", "p50", "p99"],
                            [[c, v["rps"], v["p50"], v["p99"]] for c, v in run["after_over_before"].items()])
        if db != "sqlite":
            lines += [f"The embedded default's targets, applied to {db} for comparison (its code did not change):", ""]
        lines += _table(["target", "value", "target", "met"],
                        [[name.replace("_", " "), t["value"], t["target"], "yes" if t["met"] else "NO"]
                         for name, t in run["targets"].items()])
    return lines


def _first_run(fr: dict[str, Any] | None) -> list[str]:
    """The first `make run` (bench.footprint.first_run), before and after when an A/B ran."""
    if not fr:
        return []
    if "error" in fr or "skipped" in fr:
        return ["## The first run", "", str(fr.get("error") or fr.get("skipped")), ""]
    runs = [(f"before ({fr['ab']})", fr["before"])] if fr.get("before") else []
    runs.append(("this checkout", fr["after"]))
    lines = ["## The first run (`kefu serve` with no model yet: trains the default one, then serves)", ""]
    lines += _table(["code", "start to first chat s", "start to serving s", "lines printed", "longest silence s"],
                    [[name, r["first_answer_s"] or f"over {r.get('at_least_s')} (cut off)", r.get("serving_s"),
                      len(r.get("lines", [])), r.get("longest_silence_s")] for name, r in runs])
    if fr.get("after_over_before_at_most") is not None:
        lines += [f"After over before, same run: below {fr['after_over_before_at_most']} (the run before was cut "
                  "off; target at most 0.5).", ""]
    if fr.get("after_over_before") is not None:
        ratio = fr["after_over_before"]
        lines += [f"After over before, same run: {ratio} (target at most 0.5: "
                  f"{'met' if ratio <= 0.5 else 'NOT met'}).", ""]
    lines += ["What this checkout's first run printed:", "", "```"]
    lines += [f"{r['s']:6.1f} s  {r['line']}" for r in fr["after"]["lines"]] + ["```", ""]
    return lines


def plot(res: dict[str, Any], path: Path) -> bool:
    """Latency against load: p50/p99 against connections, and against achieved throughput."""
    runs = [(key[5:], res[key]) for key in ("http_sqlite", "http_postgres") if res.get(key, {}).get("chat")]
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 6.4))
    colors = {"chat": "tab:red", "livez": "tab:blue"}
    markers = {"sqlite": "o", "postgres": "s"}
    for db, h in runs:
        for ep in ("chat", "livez"):
            rows = h[ep]
            conns = [r["connections"] for r in rows]
            style = dict(color=colors[ep], marker=markers.get(db, "o"), alpha=0.9 if db == "sqlite" else 0.6)
            label = f"{'POST /v1/chat' if ep == 'chat' else 'GET /livez'} {db}"
            ax1.plot(conns, [r["p99_ms"] for r in rows], "-", label=f"{label} p99", **style)
            ax1.plot(conns, [r["p50_ms"] for r in rows], ":", label=f"{label} p50", **style)
            ax2.plot([r["rps"] for r in rows], [r["p99_ms"] for r in rows], "-", label=f"{label} p99", **style)
            for r in rows:
                ax2.annotate(str(r["connections"]), (r["rps"], r["p99_ms"]), textcoords="offset points",
                             xytext=(3, 3), fontsize=7, color=colors[ep])
        fr = h.get("half_saturation", {}).get("chat_at_half_chat_saturation", {}).get("fixed_rate")
        if fr and fr.get("p99_ms") is not None:
            ax2.plot([fr["achieved_rps"]], [fr["p99_ms"]], marker="*", markersize=14, linestyle="none",
                     color="black" if db == "sqlite" else "grey",
                     label=f"POST /v1/chat {db} p99 at half its saturation (fixed rate)")
    ax1.set(xscale="log", yscale="log", xlabel="concurrent connections (wrk)", ylabel="latency (ms)",
            title="Latency against concurrency")
    ax1.set_xticks([r["connections"] for r in runs[0][1]["chat"]])
    ax1.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax1.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax2.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    for ax in (ax1, ax2):
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax2.set(xscale="log", yscale="log", xlabel="throughput (requests/s)", ylabel="p99 latency (ms)",
            title="p99 against throughput (labels: connections)")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.suptitle("kefu HTTP latency under load (one uvicorn process, loopback, wrk closed loop)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(res: dict[str, Any], out_dir: Path) -> dict[str, str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "md": out_dir / "results.md", "png": out_dir / "latency.png"}
    paths["json"].write_text(json.dumps(res, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(res), encoding="utf-8")
    if not plot(res, paths["png"]):
        paths.pop("png")
    return {k: str(v) for k, v in paths.items()}

