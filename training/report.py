"""The training report: a Markdown page and PNG plots beside the model.

Per-entry precision/recall/F1, the confusion matrix, a reliability diagram with ECE, the
risk-coverage curve the thresholds were chosen from, the embedders compared, the held-out
comparison with the previous model, the conversation's part and the conversations played.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support  # noqa: E402

from training.thresholds import MIN_HUMAN_RECALL

REPORT_FILE = "report.md"


def _confusion_png(labels: list[str], pred: list[str], classes: list[str], path: Path) -> None:
    cm = confusion_matrix(labels, pred, labels=classes, normalize="true")
    fig, ax = plt.subplots(figsize=(11, 10))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (cross-validation, row-normalised)")
    for i in range(len(classes)):
        for j in range(len(classes)):
            if cm[i, j] >= 0.02:
                ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if cm[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reliability_png(conf: np.ndarray, correct: np.ndarray, ece: float, path: Path, bins: int = 10) -> None:
    edges = np.linspace(0, 1, bins + 1)
    mids, accs, counts = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            mids.append(conf[mask].mean())
            accs.append(correct[mask].mean())
            counts.append(int(mask.sum()))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(mids, accs, "o-", label=f"model (ECE {ece:.3f})")
    for x, y, n in zip(mids, accs, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("confidence of the top entry")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram (cross-validation)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _risk_coverage_png(curve: list[dict[str, float]], chosen: dict[str, float], target: float, path: Path) -> None:
    pts = sorted(curve, key=lambda p: p["coverage"])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([p["coverage"] for p in pts], [p["risk"] for p in pts], "o-", label="answer threshold sweep")
    for p in pts:
        ax.annotate(f"{p['answer']:.2f}", (p["coverage"], p["risk"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.axhline(target, color="red", linestyle="--", label=f"target risk {target:.0%}")
    sel = [p for p in pts if p["answer"] == chosen["answer"]]
    if sel:
        ax.plot(sel[0]["coverage"], sel[0]["risk"], "r*", markersize=14, label="chosen")
    ax.set_xlabel("coverage (share of FAQ questions answered)")
    ax.set_ylabel("risk (share of answers that are wrong)")
    ax.set_title(f"Risk-coverage (margin {chosen['margin']}, human {chosen['human']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, *, labels: list[str], probs: np.ndarray, classes: list[str], meta: dict[str, Any],
                 curve: list[dict[str, float]], comparison: list[dict[str, Any]] | None = None,
                 heldout: dict[str, Any] | None = None, previous: dict[str, Any] | None = None,
                 dialogues: dict[str, Any] | None = None, previous_dialogues: dict[str, Any] | None = None) -> Path:
    """Write report.md and its PNGs into `out`; return the Markdown path."""
    pred = [classes[i] for i in probs.argmax(1)]
    conf = probs.max(1)
    correct = np.array([g == p for g, p in zip(labels, pred, strict=True)])
    cv = meta["metrics"]["cv"]
    _confusion_png(labels, pred, classes, out / "confusion.png")
    _reliability_png(conf, correct, cv["ece"], out / "reliability.png")
    _risk_coverage_png(curve, meta["thresholds"], meta["target_risk"], out / "risk_coverage.png")
    p, r, f, n = precision_recall_fscore_support(labels, pred, labels=classes, zero_division=0)
    lines = [
        f"# Model {meta['model_version']}", "",
        f"Embedder `{meta['embedder']}`, featurizer `{meta['featurizer']}`, seed {meta['seed']}, "
        f"{meta['n_examples']} examples of {len(classes)} entries, data hash `{meta['data_hash']}`.", "",
        f"## Cross-validation (stratified {meta.get('folds', 5)}-fold)", "",
        f"- accuracy **{cv['accuracy']:.3f}**, macro-F1 **{cv['macro_f1']:.3f}**",
        f"- family accuracy {cv['family_accuracy']:.3f}, family macro-F1 {cv['family_macro_f1']:.3f}",
        f"- expected calibration error (ECE) {cv['ece']:.3f}: see the reliability diagram", "",
        "| entry | precision | recall | F1 | examples |", "|---|---|---|---|---|",
        *[f"| `{c}` | {p[i]:.3f} | {r[i]:.3f} | {f[i]:.3f} | {n[i]} |" for i, c in enumerate(classes)], "",
        "### Most confused pairs", "", "| true | predicted as | count |", "|---|---|---|",
        *[f"| `{x['gold']}` | `{x['predicted']}` | {x['count']} |" for x in cv["most_confused"]], "",
        "![confusion matrix](confusion.png)", "", "![reliability diagram](reliability.png)", "",
        "## Thresholds", "",
        f"Chosen from the cross-validated risk-coverage curve for at most {meta['target_risk']:.0%} wrong "
        f"answers while keeping at least {MIN_HUMAN_RECALL:.0%} of the messages that need a person away "
        f"from answers and quick replies: "
        f"answer ≥ {meta['thresholds']['answer']}, top-2 margin ≥ {meta['thresholds']['margin']}, "
        f"hand off when human entries reach {meta['thresholds']['human']}, suggest when the top 3 reach "
        f"{meta['thresholds']['suggest']}.", "", "![risk-coverage](risk_coverage.png)", "",
    ]
    if comparison:
        lines += ["## Embedders compared (cross-validation)", "",
                  "| features | accuracy | macro-F1 | family macro-F1 | ECE |", "|---|---|---|---|---|",
                  *[f"| {c['name']} | {c['accuracy']:.3f} | {c['macro_f1']:.3f} | {c['family_macro_f1']:.3f} | "
                    f"{c['ece']:.3f} |" for c in comparison], ""]
    if heldout:
        lines += ["## Held-out shopper messages", "", "| metric | this model | previous model |", "|---|---|---|"]
        for key in ("route_accuracy", "macro_f1", "human_recall", "faq_handoff_rate", "entry_accuracy",
                    "wrong_answer_rate"):
            prev = previous.get(key) if previous else None
            lines.append(f"| {key} | {_fmt(heldout.get(key))} | {_fmt(prev)} |")
        lines.append("")
    context = meta.get("context") or {}
    if context.get("lambda") is not None:
        alone, with_context = context["without_context"], context["with_context"]
        lines += ["## The conversation's part (context bias)", "",
                  f"Fitted on {context['turns']} turns made from the knowledge base (L2 weight {context['lambda']}). "
                  "Follow-ups of data/faq read right alone / after their entry: "
                  f"{alone['follow_ups']:.3f} / {with_context['follow_ups']:.3f} (held out in turn: "
                  f"{context['held_out']['follow_ups']:.3f}); new questions after another entry: "
                  f"{alone['switch']:.3f} / {with_context['switch']:.3f}.", ""]
    if dialogues:
        names = sorted(dialogues)
        lines += ["## Conversations (data/dialogues, played through the conversation service)", "",
                  "| metric | " + " | ".join(f"{n}: this model | {n}: previous" for n in names) + " |",
                  "|---|" + "---|---|" * len(names)]
        for key in ("route_accuracy", "entry_accuracy", "follow_up_accuracy", "faq_handoff_rate",
                    "faq_clarify_rate", "human_recall", "chat_accuracy"):
            cells = [f"{_fmt(dialogues[n].get(key))} | {_fmt((previous_dialogues or {}).get(n, {}).get(key))}"
                     for n in names]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        lines.append("")
    path = out / REPORT_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}"
