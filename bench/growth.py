"""Growth: classification latency and training time against catalogue size; chat latency against stored sessions.

Catalogue: a synthetic data folder holds every entry `factor` times: the originals plus copies under
new ids (`shipping.when_x3`) whose examples are perturbed (a product word of their own, a dropped,
doubled or swapped character, a particle), as a shop with many product lines would have.

Sessions: rows are bulk-inserted with SQLAlchemy Core into a schema built by Store.create_schema
(so the app's migrations apply), then POST /v1/chat is measured against a real server on that database,
for new sessions and for stored ones.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import ROOT, clean_env, dir_size, distinct_variants, log, write_bodies

PRODUCTS = ["连衣裙", "羽绒服", "运动鞋", "T恤", "牛仔裤", "床单", "保温杯", "口红", "猫粮", "耳机", "书包", "茶叶",
            "面膜", "手机壳", "沙发", "玩具", "卫衣", "凉鞋", "围巾", "台灯", "枕头", "奶粉", "行李箱", "雨伞",
            "袜子", "帽子", "手表", "项链", "水杯", "拖鞋", "毛巾", "被子"]
PARTICLES = ["呀", "呢", "啊", "哈", "吗", "亲", "哦"]


def _perturb(text: str, product: str, rng: random.Random) -> str:
    chars = list(text)
    op = rng.randrange(4)
    if len(chars) > 3:
        i = rng.randrange(1, len(chars) - 1)
        if op == 0:
            del chars[i]  # a dropped character
        elif op == 1:
            chars.insert(i, chars[i])  # a doubled one
        elif op == 2:
            chars[i - 1], chars[i] = chars[i], chars[i - 1]  # two swapped
    out = "".join(chars)
    out = f"{product}{out}" if rng.random() < 0.5 else f"这个{product}{out}"
    return out + rng.choice(PARTICLES) if op == 3 or rng.random() < 0.3 else out


def scale_data(src: Path, dst: Path, factor: int, seed: int = 0) -> dict[str, int]:
    """Write `src`'s catalogue `factor` times over into `dst`; returns entries and examples written."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for p in src.iterdir():
        if p.is_file() and (p.suffix != ".yml" or p.name == "shop.yml"):
            shutil.copy2(p, dst / p.name)
    rng = random.Random(seed)
    intents: set[str] = set()
    n_examples = 0
    for p in sorted(src.glob("*.yml")):
        if p.name == "shop.yml":
            continue
        items = yaml.safe_load(p.read_text(encoding="utf-8")) or []
        out: list[dict[str, Any]] = []
        for item in items:
            examples = [ln.strip()[1:].strip().strip("\"'") for ln in str(item.get("examples", "")).splitlines()
                        if ln.strip().startswith("-")]
            out.append({**item, "examples": examples})
            for k in range(1, factor):
                product = PRODUCTS[(k - 1) % len(PRODUCTS)] + ("" if k <= len(PRODUCTS) else str(k))
                family, name = str(item["intent"]).split(".", 1)
                out.append({**item, "intent": f"{family}.{name}_x{k}",
                            "examples": [_perturb(e, product, rng) for e in examples]})
        for e in out:  # an intent may span several files (examples-only extensions)
            intents.add(str(e["intent"]))
            n_examples += len(e["examples"])
        (dst / p.name).write_text(yaml.safe_dump(out, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return {"entries": len(intents), "examples": n_examples}


def lbfgs_bytes(n_features: int, n_classes: int, history: int = 10) -> int:
    """About the memory a multinomial logistic regression's L-BFGS-B fit takes: scipy's workspace
    is 2 x history + 5 float64 vectors of the coefficients' size (scikit-learn's default history is
    10), and the wrapper and the loss keep about ten more (the point, gradients, their copies)."""
    return (2 * history + 15) * (n_features + 1) * n_classes * 8


def saga_bytes(n_features: int, n_classes: int, n_examples: int) -> int:
    """About the memory of the large path's SAGA fit: the coefficients, their running gradient and a
    copy or two (about 5 arrays of their size), and one gradient row per example."""
    return (5 * (n_features + 1) + n_examples) * n_classes * 8


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 2**63


# Run in a subprocess (`code`'s checkout as the working directory, so that another revision's code
# trains): the training's seconds and the process's peak RSS, as one JSON line on stdout.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
kind, data, out, embedder, folds = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
t0 = time.perf_counter()
if kind == "train":
    import training.train as tt
    tt.git_commit = lambda: "bench"
    res = {"version_dir": str(tt.train(data, out, seed=42, embedder=embedder, folds=folds, progress=False,
                                       echo=lambda m: None, report=False, heldout=None))}
else:
    from bench.growth import fit_only
    res = fit_only(data, out, embedder, json.loads(sys.argv[6]))
res["seconds"] = round(time.perf_counter() - t0, 2)
res["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(res))
"""


def train_subprocess(kind: str, data_dir: Path, out_dir: Path, embedder: str, folds: int, code: Path = ROOT,
                     thresholds: dict[str, Any] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """`train` (training.train.train, cross-validation and final fit) or `fit` (`fit_only`) in a fresh
    Python process: {"seconds", "peak_rss_bytes", ...}. MemoryError when `fit_only` refused."""
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", _CHILD, kind, str(data_dir), str(out_dir), embedder, str(folds),
                           json.dumps(thresholds or {})], cwd=code, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        if "MemoryError" in tail[0]:
            raise MemoryError(tail[0].split(":", 1)[-1].strip())
        raise RuntimeError(f"training ({kind}, {code}) failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fit_only(data_dir: Path, out_dir: Path, embedder: str, thresholds: dict[str, Any]) -> dict[str, Any]:
    """The final fit alone (no cross-validation), saved as a servable model in `out_dir`: the fit's
    seconds, the model's bytes and the path taken (`bot.language.pipeline.is_large`)."""
    from bot.dialogue import knowledge
    from bot.language import artefacts, segment
    from bot.language.pipeline import build_pipeline, is_large, save_model

    userdict = Path(data_dir) / segment.USERDICT_FILE
    segment.configure(userdict)
    kb = knowledge.load(Path(data_dir))
    texts, labels = kb.training_pairs()
    n_classes = len(set(labels))
    large = is_large(len(texts), n_classes)
    pipe = build_pipeline(embedder, seed=42, large=large)
    t0 = time.perf_counter()
    # pipe.fit, in two steps, so that a fit the machine cannot hold is refused instead of crashing
    features = pipe[:-1].fit_transform(texts)
    need = (saga_bytes(features.shape[1], n_classes, len(texts)) if large
            else lbfgs_bytes(features.shape[1], n_classes))
    if need > available_bytes():
        raise MemoryError(f"the logistic regression ({pipe[-1].solver}) would need about {need / 2**30:.0f} GiB "
                          f"for {features.shape[1]:,} features x {n_classes} classes; "
                          f"{available_bytes() / 2**30:.0f} GiB available")
    pipe[-1].fit(features, labels)
    seconds = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"model_version": "bench-fit-only", "thresholds": thresholds, "embedder_spec": embedder,
            "libraries": artefacts.library_versions(), **save_model(pipe, out_dir),
            "userdict_sha256": artefacts.save_userdict(userdict, out_dir)}
    artefacts.write_metadata(out_dir, meta)
    return {"fit_s": round(seconds, 2), "model_bytes": (out_dir / artefacts.PIPELINE_FILE).stat().st_size,
            "solver": pipe[-1].solver, "features": int(features.shape[1])}


def _load_fitted(data_dir: Path, out_dir: Path) -> Any:
    """The Bot of a `fit_only` model, loaded as the server loads it."""
    from bot.dialogue import knowledge
    from bot.dialogue.engine import Bot
    from bot.dialogue.thresholds import thresholds_for
    from bot.language import artefacts, segment

    segment.configure(Path(data_dir) / segment.USERDICT_FILE)
    model = artefacts.load_model(out_dir)
    return Bot(knowledge.load(Path(data_dir)), model, thresholds_for(model.metadata.get("thresholds")))


def catalogue_growth(data_dir: Path, workdir: Path, messages: list[str], factors: list[int], embedder: str,
                     folds: int, full_train_max: int, deadline: float | None = None,
                     ab: str | None = None, ab_factors: tuple[int, ...] = (4,)) -> list[dict[str, Any]]:
    """At each size: training time and peak memory (a subprocess), then Bot.reply latency (vector cache
    cleared before every call).

    Up to `full_train_max` times the catalogue, the full `train` (cross-validation + final fit) is
    timed; above it only the final fit (cross-validation would cost about `folds` more fits). With
    `ab` (a git revision), at each size of `ab_factors` the full train of that revision's code runs
    first on the same data, and the row gives this code's time over it.
    """

    from bench.inproc import bench_reply, clear_vector_cache
    from bench.load import checkout
    from bot.loader import load_bot

    rows: list[dict[str, Any]] = []
    thresholds: dict[str, Any] = {}
    last: tuple[int, float] | None = None  # (factor, seconds) of the previous size, to foresee the next
    code = checkout(ab, workdir / f"code-{ab}") if ab else None
    for factor in factors:
        # training grows with the data (more classes times more examples): foresee ~ (ratio)^1.6
        expected = last[1] * (factor / last[0]) ** 1.6 if last else 0.0
        if last and factor > full_train_max and last[0] <= full_train_max:
            expected /= 1 + 0.8 * folds  # the final fit alone, without the cross-validation's folds
        if deadline is not None and time.monotonic() + expected > deadline:
            why = f"time budget: would take about {expected:.0f} s" if expected else "time budget spent"
            rows.append({"factor": factor, "embedder": embedder, "skipped": why})
            log(f"  catalogue x{factor} ({embedder}): skipped ({why})")
            continue
        t_start = time.monotonic()
        d = workdir / f"data-x{factor}"
        sizes = scale_data(data_dir, d, factor)
        out = workdir / f"models-x{factor}-{embedder.replace(':', '_').replace('/', '_')}"
        try:  # a size that fails costs its own row, not those measured before it
            before: dict[str, Any] | None = None
            if code is not None and factor in ab_factors:
                before = train_subprocess("train", d, workdir / f"models-x{factor}-{ab}", embedder, folds, code)
                log(f"  catalogue x{factor} ({embedder}) {ab}: {before['seconds']} s, peak RSS "
                    f"{before['peak_rss_bytes'] / 2**30:.2f} GiB")
                shutil.rmtree(workdir / f"models-x{factor}-{ab}", ignore_errors=True)
            if factor <= full_train_max or not thresholds:
                info = train_subprocess("train", d, out, embedder, folds)
                bot = load_bot(d, out, embedder=embedder)
                meta = json.loads((Path(info["version_dir"]) / "metadata.json").read_text(encoding="utf-8"))
                thresholds = meta.get("thresholds") or {}
                train = {"train_s": info["seconds"], "train_kind": f"full train ({meta.get('folds', folds)}-fold CV "
                         f"+ final fit, {meta.get('solver', 'lbfgs')})", "peak_rss_bytes": info["peak_rss_bytes"],
                         "model_bytes": dir_size(Path(info["version_dir"]) / "pipeline.joblib")}
            else:
                try:
                    info = train_subprocess("fit", d, out, embedder, folds, thresholds=thresholds)
                except MemoryError as exc:
                    rows.append({"factor": factor, "embedder": embedder, **sizes, "skipped": str(exc)})
                    log(f"  catalogue x{factor} ({embedder}): not trained: {exc}")
                    continue  # (the data and the model go in `finally`)
                bot = _load_fitted(d, out)
                train = {"fit_s": info["fit_s"], "train_kind": f"final fit only ({info['solver']}, thresholds of "
                         "the previous size)", "peak_rss_bytes": info["peak_rss_bytes"],
                         "model_bytes": info["model_bytes"]}
            if before is not None:
                train["before"] = {"ab": ab, "train_s": before["seconds"], "peak_rss_bytes": before["peak_rss_bytes"]}
                if "train_s" in train:
                    train["train_s_over_before"] = round(train["train_s"] / before["seconds"], 3)
            lat = bench_reply(bot, messages, 1, clear_cache=True)
            clear_vector_cache()
            row = {"factor": factor, "embedder": embedder, **sizes, **train,
                   **{k: lat[k] for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "msgs_per_s")}}
            log(f"  catalogue x{factor} ({embedder}): {sizes['entries']} entries, "
                f"{train.get('train_s', train.get('fit_s'))} s ({train['train_kind']}), peak RSS "
                f"{train['peak_rss_bytes'] / 2**30:.2f} GiB, reply p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms, "
                f"model {train['model_bytes'] / 1e6:.1f} MB")
            rows.append(row)
            last = (factor, time.monotonic() - t_start - (before["seconds"] if before else 0.0))
            del bot
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            rows.append({"factor": factor, "embedder": embedder, **sizes, "skipped": f"failed: {exc}"})
            log(f"  catalogue x{factor} ({embedder}): failed: {exc}")
        finally:
            shutil.rmtree(d, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
    return rows


# -- stored sessions ----------------------------------------------------------------------------

def fill_sessions(db_url: str, n: int, seed: int = 1, chunk: int = 20_000) -> dict[str, Any]:
    """Insert `n` past conversations: each a session with 2-6 messages; one in five handed off.

    Handoffs are resolved except the most recent 20 (a realistic queue). Returns counts, the
    seconds it took and up to 5,000 ids of stored sessions still in bot mode.
    """
    from sqlalchemy import insert

    from bot.service.schema import ChatSession, Handoff, Message, new_token
    from bot.service.store import Store

    store = Store(db_url)
    store.create_schema()
    rng = random.Random(seed)
    t0 = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    sessions: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    handoffs: list[dict[str, Any]] = []
    bot_mode: list[str] = []
    counts = {"sessions": 0, "messages": 0, "handoffs": 0}
    texts = ["今天下单什么时候发货", "包邮吗", "可以退货吗", "尺码怎么选", "谢谢", "好的"]

    def flush() -> None:
        with store.engine.begin() as conn:
            if sessions:
                conn.execute(insert(ChatSession.__table__), sessions)
            if messages:
                conn.execute(insert(Message.__table__), messages)
            if handoffs:
                conn.execute(insert(Handoff.__table__), handoffs)
        counts["sessions"] += len(sessions)
        counts["messages"] += len(messages)
        counts["handoffs"] += len(handoffs)
        sessions.clear()
        messages.clear()
        handoffs.clear()

    for i in range(n):
        sid = new_token()
        at = now - dt.timedelta(minutes=(n - i))
        handed = rng.random() < 0.2
        sessions.append({"id": sid, "created_at": at, "updated_at": at, "mode": "human" if handed and i >= n - 20
                         else "bot", "fallbacks": 0, "last_intent": "shipping.when"})
        k = rng.randint(1, 3)
        for j in range(k):
            messages.append({"session_id": sid, "role": "shopper", "text": texts[(i + j) % 6], "intent": None,
                             "confidence": None, "extra": None, "created_at": at})
            messages.append({"session_id": sid, "role": "bot", "text": "亲，现货商品当天发货哦～",
                             "intent": "shipping.when", "confidence": 0.9, "extra": {"action": "answer"},
                             "created_at": at})
        if handed:
            waiting = i >= n - 20
            handoffs.append({"session_id": sid, "status": "waiting" if waiting else "resolved", "reason": "complaint",
                             "intent": "human.complaint", "guesses": [], "last_message": texts[i % 6],
                             "message_id": None, "created_at": at,
                             "resolved_at": None if waiting else at, "agent": None if waiting else "bench",
                             "label": None})
        elif len(bot_mode) < 5000:
            bot_mode.append(sid)
        if len(sessions) >= chunk:
            flush()
    flush()
    store.close()
    return {**counts, "insert_s": round(time.perf_counter() - t0, 2), "bot_mode_ids": bot_mode}


def session_growth(data_dir: Path, model: dict[str, Any], workdir: Path, messages: list[str], sizes: list[int],
                   duration: float, db_factory: Any) -> list[dict[str, Any]]:
    """POST /v1/chat latency (wrk, 1 connection, and 16 for throughput) on a database holding `sizes` sessions."""
    from bench.common import Server
    from bench.httpload import Bodies, run_wrk, server_env

    rows = []
    for n in sizes:
        url, cleanup = db_factory(f"sessions-{n}")
        try:
            filled = fill_sessions(url, n)
            ids = filled.pop("bot_mode_ids")
            texts = distinct_variants(messages)  # no text repeats: the vector cache stays out of it
            half = len(texts) // 2
            new_bodies = Bodies(write_bodies(workdir / f"bodies-new-{n}.jsonl", texts[:half]))
            old_bodies = Bodies(write_bodies(workdir / f"bodies-old-{n}.jsonl", texts[half:], ids))
            server = Server(server_env(data_dir, model, url), workdir / f"server-sessions-{n}.log")
            with server.start():
                server.wait_first_answer()
                run_wrk(server.url + "/v1/chat", 4, 1, new_bodies)  # warm-up
                new1 = run_wrk(server.url + "/v1/chat", 1, duration, new_bodies)
                old1 = run_wrk(server.url + "/v1/chat", 1, duration, old_bodies)
                new16 = run_wrk(server.url + "/v1/chat", 16, duration, new_bodies)
            row = {"stored_sessions": n, **filled,
                   "new_session_c1": {k: new1[k] for k in ("rps", "p50_ms", "p99_ms")},
                   "stored_session_c1": {k: old1[k] for k in ("rps", "p50_ms", "p99_ms")},
                   "new_session_c16": {k: new16[k] for k in ("rps", "p50_ms", "p99_ms")},
                   "vector_cache": f"{new_bodies.sent + old_bodies.sent} requests over {len(texts)} distinct texts"}
            log(f"  {n} stored sessions: new-session chat p50 {new1['p50_ms']} ms, stored-session p50 "
                f"{old1['p50_ms']} ms, c16 {new16['rps']} req/s")
            rows.append(row)
        finally:
            cleanup()
    return rows

