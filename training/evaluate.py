"""Evaluation of the whole bot (rules + model + policy) on labelled JSON lines.

A record is `{"text", "route", "faq": [ids]}`; `route` is `faq`/`human` or a family name
(`size`, `shipping`, ... as in shared evaluation sets).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from sklearn.metrics import f1_score

from bot.dialogue.engine import Bot


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON lines file, or of every *.jsonl file in a folder, in name order."""
    path = Path(path)
    if path.is_dir():
        return [rec for part in sorted(path.glob("*.jsonl")) for rec in read_jsonl(part)]
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{path}:{n}: not valid JSON") from None
            turns = rec.get("turns") if isinstance(rec, dict) else None
            if isinstance(turns, list):  # a chat (training.dialogues)
                if not turns or not all(isinstance(t, dict) and isinstance(t.get("text"), str) for t in turns):
                    raise ValueError(f"{path}:{n}: every turn needs a 'text' string")
            elif not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise ValueError(f"{path}:{n}: needs a 'text' string")
            records.append(rec)
    return records


def gold_family(rec: dict[str, Any]) -> str:
    route = str(rec.get("route", ""))
    if route == "human":
        return "human"
    faq = rec.get("faq") or []
    if faq:
        return str(faq[0]).split(".")[0]
    return route


def evaluate(bot: Bot, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Route accuracy, human recall, wrong handoffs, entry accuracy, family macro-F1."""
    n = len(records)
    route_ok = human_n = human_hit = faq_n = faq_handed = entry_n = entry_ok = 0
    answered = wrong_answers = 0
    gold_fams, pred_fams, errors = [], [], []
    for rec in records:
        out = bot.predict(rec["text"])
        gold_human = rec.get("route") == "human"
        pred_human = out.route == "human"
        route_ok += gold_human == pred_human
        gold_ids = [str(x) for x in rec.get("faq") or []]
        if gold_human:
            human_n += 1
            human_hit += pred_human
        else:
            faq_n += 1
            faq_handed += pred_human
            if gold_ids:
                entry_n += 1
                entry_ok += (not pred_human) and out.intent in gold_ids
        if out.action == "answer":
            answered += 1
            if gold_human or (gold_ids and out.intent not in gold_ids) or (
                    not gold_ids and str(out.intent).split(".")[0] != gold_family(rec)):
                wrong_answers += 1
        gold_fams.append(gold_family(rec))
        pred_fams.append("human" if pred_human else str(out.intent).split(".")[0])
        if (gold_human != pred_human) or (gold_ids and not gold_human and out.intent not in gold_ids):
            errors.append({"text": rec["text"], "gold": rec.get("route"), "gold_faq": gold_ids,
                           "route": out.route, "intent": out.intent, "confidence": round(out.confidence, 3),
                           "reason": out.reason})
    fams = sorted(set(gold_fams))
    return {
        "n": n,
        "route_accuracy": route_ok / n if n else 0.0,
        "human_recall": human_hit / human_n if human_n else None,
        "faq_handoff_rate": faq_handed / faq_n if faq_n else None,
        "entry_accuracy": entry_ok / entry_n if entry_n else None,
        "family_accuracy": sum(g == p for g, p in zip(gold_fams, pred_fams, strict=True)) / n if n else 0.0,
        "macro_f1": float(f1_score(gold_fams, pred_fams, labels=fams, average="macro", zero_division=0)),
        "wrong_answer_rate": wrong_answers / answered if answered else 0.0,
        "answered": answered,
        "routes": dict(Counter(str(r.get("route")) for r in records)),
        "errors": errors,
    }


def format_report(m: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [
        f"messages            {m['n']}",
        f"route accuracy      {pct(m['route_accuracy'])}",
        f"macro-F1 (family)   {pct(m['macro_f1'])}",
        f"recall of human     {pct(m['human_recall'])}",
        f"FAQ handed off      {pct(m['faq_handoff_rate'])}",
        f"entry accuracy      {pct(m['entry_accuracy'])}",
        f"family accuracy     {pct(m['family_accuracy'])}",
        f"wrong answers       {pct(m['wrong_answer_rate'])} of {m['answered']} answered",
    ]
    return "\n".join(lines)
