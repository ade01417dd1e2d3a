"""The classifier in process: Bot.reply one message at a time, beside jieba segmentation alone.

The embedders keep a text -> vector cache (bot.language.vectors) that would make a repeated
message nearly free. Every measured call here runs with that cache cleared just before it
(outside the timed region), so each message pays its full embedding cost: what a new message
costs in production. One extra pass with the cache warm shows what a repeat costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import summarize_ms

CACHE_NOTE = ("the vector caches (bot.language.vectors.clear_caches) cleared before every measured call "
              "(outside the timer): "
              "every message pays its embedding; the 'cached' figures are a separate pass with the cache warm")


def clear_vector_cache() -> None:
    from bot.language.vectors import clear_caches

    clear_caches()


def _timed(fn: Callable[[str], Any], messages: list[str], passes: int, clear_cache: bool) -> list[float]:
    samples: list[float] = []
    for _ in range(passes):
        for m in messages:
            if clear_cache:
                clear_vector_cache()
            t0 = time.perf_counter()
            fn(m)
            samples.append(time.perf_counter() - t0)
    return samples


def bench_reply(bot: Any, messages: list[str], passes: int = 1, clear_cache: bool = True) -> dict[str, Any]:
    """Latency of `bot.reply(message)` (fresh session state), one message at a time.

    Returns p50/p90/p99/mean/max in ms, and messages per second (serial, one thread).
    """
    from bot.dialogue.policy import SessionState

    bot.reply(messages[0], SessionState())  # warm any lazily built part
    if not clear_cache:  # a repeat: every message already seen once, so its vector is in the cache
        for m in messages:
            bot.reply(m, SessionState())
    samples = _timed(lambda m: bot.reply(m, SessionState()), messages, passes, clear_cache)
    out: dict[str, Any] = summarize_ms(samples)
    out["msgs_per_s"] = round(len(samples) / sum(samples), 1) if samples else 0.0
    out["passes"] = passes
    out["messages"] = len(messages)
    out["vector_cache"] = "cleared before each call" if clear_cache else "warm (every message seen once before)"
    return out


def bench_segmentation(messages: list[str], passes: int = 1) -> dict[str, Any]:
    """Latency of jieba alone: bot.language.segment.cut(bot.language.normalize.normalize(t))."""
    from bot.language.normalize import normalize
    from bot.language.segment import cut, warm

    warm()
    samples = _timed(lambda m: cut(normalize(m)), messages, passes, clear_cache=False)
    out: dict[str, Any] = summarize_ms(samples)
    out["msgs_per_s"] = round(len(samples) / sum(samples), 1) if samples else 0.0
    return out


def breakdown(bot: Any, messages: list[str]) -> dict[str, Any]:
    """Where one reply's time goes: each stage timed alone on the same messages (means, ms).

    Stages: normalise, rules, jieba, and the model's predict_proba split into its pipeline steps
    (normalise step, word TF-IDF (includes jieba), char TF-IDF, embedding, logistic regression).
    Also how many classifier calls one reply makes on average, and how many texts they rank (a
    message of several clauses ranks the whole and each clause in one call).
    """
    from bot.dialogue import rules
    from bot.dialogue.policy import SessionState
    from bot.language import artefacts
    from bot.language.normalize import normalize
    from bot.language.segment import cut

    pipe = artefacts.load_pipeline(bot.model)
    norm_step = pipe.named_steps["normalize"]
    union = pipe.named_steps["features"]
    clf = pipe.named_steps["clf"]
    stage: dict[str, float] = {}

    def add(name: str, seconds: float) -> None:
        stage[name] = stage.get(name, 0.0) + seconds

    for m in messages:
        t = time.perf_counter()
        norm = normalize(m)
        add("normalize", time.perf_counter() - t)
        t = time.perf_counter()
        rules.match(norm)
        add("rules", time.perf_counter() - t)
        t = time.perf_counter()
        cut(norm)
        add("jieba_cut", time.perf_counter() - t)
        clear_vector_cache()
        t = time.perf_counter()
        bot.model.rank(norm, 5)
        add("model_rank_total", time.perf_counter() - t)
        # the pipeline's steps one by one
        t = time.perf_counter()
        normed = norm_step.transform([m])
        add("pipe.normalize", time.perf_counter() - t)
        clear_vector_cache()
        for name, tr in union.transformer_list:
            t = time.perf_counter()
            tr.transform(normed)
            add(f"pipe.{name}", time.perf_counter() - t)
        x = union.transform(normed)  # untimed (the embedding is cached by now)
        t = time.perf_counter()
        clf.predict_proba(x)
        add("pipe.logreg", time.perf_counter() - t)

    calls = texts = 0
    scorer = bot.model.scorer  # every ranking goes through Scorer.read
    original = scorer.read

    def counting(batch: list[str], contexts: Any = None, joined: Any = None) -> Any:
        nonlocal calls, texts
        calls += 1
        texts += len(batch)
        return original(batch, contexts, joined)

    scorer.read = counting  # type: ignore[method-assign]  # shadows the method for this measurement only
    try:
        for m in messages:
            bot.reply(m, SessionState())
    finally:
        del scorer.read
    n = max(1, len(messages))
    out = {k: round(v / n * 1000, 4) for k, v in stage.items()}
    # what predict_proba costs beyond its steps: scikit-learn's checks, FeatureUnion's joblib call, hstack
    steps = sum(v for k, v in out.items() if k.startswith("pipe."))
    out["pipe.overhead"] = round(max(0.0, out["model_rank_total"] - steps), 4)
    out["rank_calls_per_reply"] = round(calls / n, 3)
    out["texts_ranked_per_reply"] = round(texts / n, 3)
    return out


def run_inprocess(data_dir: Path, models: dict[str, dict[str, Any]], messages: list[str], passes: int,
                  default: str, databases: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every model in `models` (name -> train_model() result) through bench_reply, plus segmentation;
    then, for the default model, Conversations.chat on each database of `databases`
    (name -> callable returning (url, cleanup))."""
    from bot.loader import load_bot

    seg = bench_segmentation(messages, passes)
    result: dict[str, Any] = {"messages": len(messages), "passes": passes, "vector_cache": CACHE_NOTE,
                              "default_embedder": default, "segmentation": seg, "embedders": {}}
    for name, info in models.items():
        bot = load_bot(Path(data_dir), Path(info["models_dir"]), embedder=info["embedder"])
        cold = bench_reply(bot, messages, passes, clear_cache=True)
        warm = bench_reply(bot, messages, 1, clear_cache=False)
        row = {**cold, "cached": {k: warm[k] for k in ("p50_ms", "p99_ms", "mean_ms", "msgs_per_s")},
               "embedder_spec": info["embedder"], "default": info["embedder"] == default,
               "ratio_to_segmentation": {"p50": _r(cold["p50_ms"], seg["p50_ms"]),
                                         "p99": _r(cold["p99_ms"], seg["p99_ms"]),
                                         "mean": _r(cold["mean_ms"], seg["mean_ms"])},
               "breakdown_ms": breakdown(bot, messages)}
        result["embedders"][name] = row
        clear_vector_cache()
    if databases:
        bot = load_bot(Path(data_dir), Path(models[default]["models_dir"]), embedder=models[default]["embedder"])
        reply = result["embedders"][default]
        layers: dict[str, Any] = {"bot_reply": {k: reply[k] for k in ("p50_ms", "p99_ms", "mean_ms")}}
        for name, make in databases.items():
            url, cleanup = make()
            try:
                layers[f"conversation_{name}"] = bench_conversation(bot, url, messages)
            finally:
                cleanup()
        result["chat_layers"] = layers
        clear_vector_cache()
    base = result["embedders"].get("none")
    if base:
        for row in result["embedders"].values():
            row["ratio_to_none"] = {"p50": _r(row["p50_ms"], base["p50_ms"]), "p99": _r(row["p99_ms"], base["p99_ms"])}
    return result


def _r(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def bench_conversation(bot: Any, db_url: str, messages: list[str]) -> dict[str, Any]:
    """Conversations.chat (store the message, answer, store the reply: what POST /v1/chat does
    without HTTP), each message a new session, vector cache cleared before each call; plus how
    many transactions and statements one chat turn costs."""
    from sqlalchemy import event

    from bot.service.conversations import Conversations
    from bot.service.store import Store

    store = Store(db_url)
    store.create_schema()
    try:
        conv = Conversations(lambda: bot, store)
        conv.chat(None, "在吗")
        counts = {"statements": 0, "commits": 0}

        def on_stmt(*_: Any) -> None:
            counts["statements"] += 1

        def on_commit(*_: Any) -> None:
            counts["commits"] += 1

        event.listen(store.engine, "before_cursor_execute", on_stmt)
        event.listen(store.engine, "commit", on_commit)
        samples = _timed(lambda m: conv.chat(None, m), messages, 1, clear_cache=True)
        event.remove(store.engine, "before_cursor_execute", on_stmt)
        event.remove(store.engine, "commit", on_commit)
    finally:
        store.close()
    out: dict[str, Any] = summarize_ms(samples)
    n = max(1, len(messages))
    out["transactions_per_chat"] = round(counts["commits"] / n, 2)
    out["statements_per_chat"] = round(counts["statements"] / n, 2)
    return out
