"""The conversation's part of the model: how the previous turn's entry shifts the reading of the next.

In a chat, a message is read with the entry the previous turn was about (A): the classifier's
scores for each entry B get a bias W[A, B] before the softmax,

    p(B | message, A) = softmax_B( log p(B | message) + W[A, B] ).

W is a multinomial logistic regression with the classifier's log-probabilities as a fixed offset,
L2-regularised, fitted on turns made from the knowledge base:
- a new question after a turn about another entry, or about the same one (most turns): the
  context must not bend a message that is clear on its own;
- the follow-ups of data/faq (`follow_ups: - after: [...]`): short messages that mean an entry only
  after certain others (那运费谁出 is returns.fee after a return question).
The classifier's probabilities are honest ones: out-of-fold for its own examples, and the fitted
model's for follow-ups, which it never trains on. The regularisation is chosen on follow-ups held out in
turn (new wordings of the transitions the data describes): the most follow-ups right without losing
a new question that the message alone gets right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from bot.dialogue.knowledge import KnowledgeBase
from bot.language.model import CONTEXT_FEATURES, context_features, gate_of, softmax
from bot.language.normalize import normalize

LAMBDAS = (0.01, 0.03, 0.1, 0.3, 1.0)  # L2 weight per turn, times the number of turns
CONTEXTS_PER_EXAMPLE = 2  # previous entries drawn for each example of the knowledge base
MAX_SWITCH_LOSS = 0.005  # new questions the context may get wrong that the message alone got right
FOLDS = 4
GATE_L2 = 1e-3


def fit_bias(prev: np.ndarray, logp: np.ndarray, feats: np.ndarray, y: np.ndarray, keys: int,
             lam: float) -> tuple[np.ndarray, np.ndarray]:
    """W (keys x classes) and the gate (features) minimising the mean cross-entropy of
    softmax(logp + gate(features) * W[prev]) plus lam |W|^2 (and a little on the gate)."""
    n, c = logp.shape
    f = feats.shape[1]
    onehot = np.zeros((n, c))
    onehot[np.arange(n), y] = 1.0

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w, theta = flat[:keys * c].reshape(keys, c), flat[keys * c:]
        sig = 1.0 / (1.0 + np.exp(-(feats @ theta)))
        gate = 2.0 * sig
        rows = w[prev]
        p = softmax(logp + gate[:, None] * rows)
        ce = -np.log(np.clip(p[np.arange(n), y], 1e-300, None)).mean()
        d = (p - onehot) / n  # d loss / d logits
        grad_w = np.zeros_like(w)
        np.add.at(grad_w, prev, gate[:, None] * d)
        grad_theta = feats.T @ ((d * rows).sum(1) * 2.0 * sig * (1.0 - sig))
        value = ce + lam * (w ** 2).sum() + GATE_L2 * (theta ** 2).sum()
        return float(value), np.concatenate([(grad_w + 2 * lam * w).ravel(), grad_theta + 2 * GATE_L2 * theta])

    res = minimize(loss, np.zeros(keys * c + f), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return np.asarray(res.x[:keys * c]).reshape(keys, c), np.asarray(res.x[keys * c:])


def _turns(texts: list[str], labels: list[str], oof: np.ndarray, classes: list[str], kb: KnowledgeBase,
           follow_probs: np.ndarray, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(previous entry, log-probabilities, features, label) of new questions, and of follow-ups with
    their fold."""
    index = {c: i for i, c in enumerate(classes)}
    askable = [i for i, c in enumerate(classes) if not c.startswith("human.")]
    rng = np.random.default_rng(seed)
    feats = np.array([context_features(normalize(t), row) for t, row in zip(texts, oof, strict=True)])
    rows = np.repeat(np.arange(len(labels)), CONTEXTS_PER_EXAMPLE)
    switch = {"prev": rng.choice(askable, size=len(rows)), "logp": np.log(np.clip(oof[rows], 1e-12, None)),
              "feats": feats[rows], "y": np.array([index[labels[r]] for r in rows])}
    prev, logp, fs, y, group = [], [], [], [], []
    k = 0
    for intent in classes:
        for follow in kb.entries[intent].follow_ups:
            for text in follow.examples:
                f = context_features(normalize(text), follow_probs[k])
                for after in follow.after:
                    prev.append(index[after])
                    logp.append(np.log(np.clip(follow_probs[k], 1e-12, None)))
                    fs.append(f)
                    y.append(index[intent])
                    group.append(k % FOLDS)  # a follow-up is held out with all its readings
                k += 1
    follow = {"prev": np.array(prev, dtype=int), "logp": np.array(logp).reshape(-1, len(classes)),
              "feats": np.array(fs).reshape(-1, feats.shape[1]), "y": np.array(y, dtype=int),
              "group": np.array(group, dtype=int)}
    return switch, follow


def _accuracy(w: np.ndarray, theta: np.ndarray, part: dict[str, np.ndarray]) -> float:
    if not len(part["y"]):
        return 1.0
    gate = gate_of(theta, part["feats"])
    return float(((part["logp"] + gate[:, None] * w[part["prev"]]).argmax(1) == part["y"]).mean())


def _fit(parts: list[dict[str, np.ndarray]], keys: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    prev, logp, feats, y = (np.concatenate([p[k] for p in parts]) for k in ("prev", "logp", "feats", "y"))
    return fit_bias(prev, logp, feats, y, keys, lam / len(y))


def choose_lambda(scores: list[tuple[float, float, float]], switch_alone: float,
                  follow_ups: int) -> tuple[float, float, float]:
    """The (lambda, follow-ups, switch) to keep among the grid's held-out scores: among those that keep
    new questions right, the strongest regularisation whose follow-ups are within one standard error
    of the best (the one-standard-error rule: neighbours on the grid differ by noise, and picking the
    best alone flips from one lambda to the next when a few examples change)."""
    fine = [s for s in scores if s[2] >= switch_alone - MAX_SWITCH_LOSS] or scores[-1:]
    best = max(s[1] for s in fine)
    se = float(np.sqrt(best * (1 - best) / max(1, follow_ups)))
    return max((s for s in fine if s[1] >= best - se), key=lambda s: s[0])


def fit_context(kb: KnowledgeBase, texts: list[str], labels: list[str], oof: np.ndarray, classes: list[str],
                pipeline: Any, seed: int = 42) -> dict[str, Any]:
    """The context bias and gate for the scorer ({"keys", "bias", "gate"}) and the figures behind them."""
    follow_texts = [t for c in classes for f in kb.entries[c].follow_ups for t in f.examples]
    follow_probs = np.zeros((0, len(classes)))
    if follow_texts:
        cols = [list(pipeline.classes_).index(c) for c in classes]
        follow_probs = pipeline.predict_proba(follow_texts)[:, cols]
    switch, follow = _turns(texts, labels, oof, classes, kb, follow_probs, seed)
    keys = len(classes)
    zero, flat = np.zeros((keys, len(classes))), np.zeros(switch["feats"].shape[1])
    base = {"switch": _accuracy(zero, flat, switch), "follow_ups": _accuracy(zero, flat, follow)}
    if not len(follow["y"]):  # no follow-ups in the data: nothing to learn
        return {"keys": classes, "bias": zero, "gate": flat, "lambda": None, "turns": 0,
                "without_context": base, "with_context": base}
    scores = []
    for lam in LAMBDAS:
        held_follow, held_switch = [], []
        for fold in range(FOLDS):
            train = follow["group"] != fold
            w, theta = _fit([switch, {k: v[train] for k, v in follow.items()}], keys, lam)
            held_follow.append((_accuracy(w, theta, {k: v[~train] for k, v in follow.items()}), int((~train).sum())))
            held_switch.append(_accuracy(w, theta, switch))
        acc_follow = sum(a * n for a, n in held_follow) / max(1, sum(n for _, n in held_follow))
        scores.append((lam, acc_follow, float(np.mean(held_switch))))
    lam, acc_follow, acc_switch = choose_lambda(scores, base["switch"], len(follow["y"]))
    w, theta = _fit([switch, follow], keys, lam)
    return {"keys": classes, "bias": w, "gate": theta, "lambda": lam, "turns": int(len(switch["y"]) + len(follow["y"])),
            "without_context": base,
            "held_out": {"follow_ups": round(acc_follow, 4), "switch": round(acc_switch, 4)},
            "with_context": {"switch": _accuracy(w, theta, switch), "follow_ups": _accuracy(w, theta, follow)},
            "gate_weights": dict(zip(CONTEXT_FEATURES, (round(float(t), 3) for t in theta), strict=True)),
            "grid": [{"lambda": s[0], "follow_ups": round(s[1], 4), "switch": round(s[2], 4)} for s in scores]}
