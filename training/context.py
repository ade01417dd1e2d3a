"""The conversation's part of the model: how the previous turn shifts the reading of the next.

In a chat, a message is read after the entry the previous turn was about (A) and joined to the
shopper's previous message: for each entry B,

    log p(B) = log p(B | message) + g1 * W[A, B] + g2 * (log p(B | previous + message) - log p(B | message))

(bot.language.model.in_context). W is a bias per pair of entries; the gates g1 and g2 are logistic
in features of the message (short, 那…, …呢, sure alone, how each reading sees A): a fragment leans
on the conversation, a full new question does not. W and the gates are a multinomial logistic
regression with the classifier's readings as fixed inputs, L2-regularised, fitted on turns made from
the knowledge base:
- a new question after a question about another entry, or about the same one (most turns): the
  context must not bend a message that is clear on its own;
- the follow-ups of data/faq (`follow_ups: - after: [...]`): short messages that mean an entry only
  after certain others (那运费谁出 is returns.fee after a return question).
Each turn's previous message is an example of A. The readings are honest ones: out-of-fold for
the classifier's own examples (alone and joined, by the model that held the example out:
training.train.cross_validate), and the fitted model's for follow-ups, which it never trains on. The
regularisation is chosen on follow-ups held out in turn (new wordings of the transitions the data
describes): the most follow-ups right without losing a new question the message alone gets right.
The fit grows with the turns, not with the catalogue's entries squared: at most MAX_TURNS turns of
each kind, each scored over its CANDIDATES likeliest entries (bench/README.md, catalogue growth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from bot.dialogue.knowledge import KnowledgeBase
from bot.language.model import CONTEXT_FEATURES, context_features, context_logits, gates, log_of, softmax
from bot.language.normalize import normalize

LAMBDAS = (0.01, 0.03, 0.1, 0.3, 1.0)  # L2 weight per turn, times the number of turns

MAX_SWITCH_LOSS = 0.005  # new questions the context may get wrong that the message alone got right
FOLDS = 4
GATE_L2 = 1e-3
CANDIDATES = 32  # entries a turn is scored over in the fit (fit_bias)
# Turns of each kind (new questions, follow-ups) at most, drawn at random beyond: the shipped catalogue
# has 4,817 examples and 1,650 follow-up turns, a catalogue sixteen times its size about 77,000 and
# 26,000, whose every turn costs its readings and its share of each fit.
MAX_TURNS = 8000


def candidates(alone: np.ndarray, joined: np.ndarray, prev: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """The entries each turn is scored over in the fit (n x k class indices): every entry when there
    are at most k, else the turn's own entry, the previous one and the likeliest alone or joined.
    The rest have next to no probability in either reading, and a bias of a few units leaves it so."""
    n, c = alone.shape
    if c <= k:
        return np.tile(np.arange(c), (n, 1))
    score = np.maximum(alone, joined)
    rows = np.arange(n)
    score[rows, prev] = 2.0
    score[rows, y] = 3.0
    return np.argpartition(-score, k - 1, axis=1)[:, :k]


def fit_bias(prev: np.ndarray, alone: np.ndarray, joined: np.ndarray, feats: np.ndarray, y: np.ndarray,
             keys: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """W (keys x classes) and the gates (2 x features) minimising the mean cross-entropy of
    bot.language.model.in_context plus lam |W|^2 (and a little on the gates). Each turn is scored
    over its CANDIDATES likeliest entries (all of them in a catalogue of that size or less), so that a
    loss costs turns x CANDIDATES, not turns x entries."""
    n, c = alone.shape
    f = feats.shape[1]
    cand = candidates(alone, joined, prev, y, CANDIDATES)
    target = (cand == y[:, None]).astype(float)
    la = np.take_along_axis(log_of(alone), cand, 1)
    shift = np.take_along_axis(log_of(joined), cand, 1) - la
    pair = (prev[:, None] * c + cand).ravel()  # the cell of W each score reads

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w, theta = flat[:keys * c].reshape(keys, c), flat[keys * c:].reshape(2, f)
        g1, g2 = gates(theta, feats)
        rows = w.ravel()[pair].reshape(n, -1)
        p = softmax(context_logits(la, shift, rows, g1, g2))
        ce = -np.log(np.clip((p * target).sum(1), 1e-300, None)).mean()
        d = (p - target) / n  # d loss / d logits
        grad_w = np.bincount(pair, weights=(g1[:, None] * d).ravel(), minlength=keys * c).reshape(keys, c)
        grad_1 = feats.T @ ((d * rows).sum(1) * g1 * (1.0 - g1 / 2.0))
        grad_2 = feats.T @ ((d * shift).sum(1) * g2 * (1.0 - g2))
        value = ce + lam * (w ** 2).sum() + GATE_L2 * (theta ** 2).sum()
        grad_gates = np.stack([grad_1, grad_2]) + 2 * GATE_L2 * theta
        grad = np.concatenate([(grad_w + 2 * lam * w).ravel(), grad_gates.ravel()])
        return float(value), grad

    res = minimize(loss, np.zeros(keys * c + 2 * f), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return np.asarray(res.x[:keys * c]).reshape(keys, c), np.asarray(res.x[keys * c:]).reshape(2, f)


@dataclass
class Switches:
    """Examples of the knowledge base (`rows`) as new questions after a question about another entry (or
    the same one): the previous entry, the example joined to an example of it, and (once read) the
    out-of-fold reading of that joined text."""

    rows: np.ndarray
    prev: np.ndarray  # class index of the previous entry, in sorted-label order
    joined: list[str]
    read: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def joined_by_example(self, n: int) -> list[str | None]:
        """The joined text of each of the n examples, None for those not drawn."""
        out: list[str | None] = [None] * n
        for r, text in zip(self.rows, self.joined, strict=True):
            out[int(r)] = text
        return out


def _by_entry(texts: list[str], labels: list[str], index: dict[str, int]) -> dict[int, list[str]]:
    """The examples of each entry (by class index), in their order, in one pass."""
    out: dict[int, list[str]] = {}
    for t, lab in zip(texts, labels, strict=True):
        out.setdefault(index[lab], []).append(t)
    return out


def switch_turns(texts: list[str], labels: list[str], seed: int, share: float = 1.0) -> Switches:
    """A `share` of the examples (MAX_TURNS at most), drawn at random, each after an example of a random
    entry (a human entry too: a chat goes on after a handoff)."""
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(seed)
    by_entry = _by_entry(texts, labels, index)
    prev = rng.choice(len(classes), size=len(texts))
    said = [by_entry[a][int(rng.integers(len(by_entry[a])))] for a in prev]
    rows = np.arange(len(texts))
    size = min(max(1, round(len(texts) * share)), MAX_TURNS)
    if size < len(texts):
        rows = np.sort(rng.choice(len(texts), size=size, replace=False))
    return Switches(rows, prev[rows], [f"{said[r]}，{texts[r]}" for r in rows])


def _turns(switches: Switches, texts: list[str], labels: list[str], oof: np.ndarray, classes: list[str],
           kb: KnowledgeBase, pipeline: Any, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The turns of new questions, and of follow-ups with their fold: previous entry, the two readings,
    the gates' features and the label."""
    index = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(seed + 1)
    by_entry = _by_entry(texts, labels, index)
    follow_texts, follow_joined, prev, y, group = [], [], [], [], []
    k = 0
    for intent in classes:
        for follow in kb.entries[intent].follow_ups:
            for text in follow.examples:
                for after in follow.after:
                    said = by_entry[index[after]]
                    follow_texts.append(text)
                    follow_joined.append(f"{said[int(rng.integers(len(said)))]}，{text}")
                    prev.append(index[after])
                    y.append(index[intent])
                    group.append(k % FOLDS)  # a follow-up is held out with all its readings
                k += 1
    if len(follow_texts) > MAX_TURNS:  # a large catalogue's: a sample
        keep = np.sort(rng.choice(len(follow_texts), size=MAX_TURNS, replace=False))
        follow_texts, follow_joined, prev, y, group = ([x[i] for i in keep]
                                                       for x in (follow_texts, follow_joined, prev, y, group))
    read = np.zeros((0, len(classes)))
    if follow_texts:
        cols = [list(pipeline.classes_).index(c) for c in classes]
        read = pipeline.predict_proba([*follow_texts, *follow_joined])[:, cols]

    def part(texts: list[str], alone: np.ndarray, joined: np.ndarray, before: np.ndarray, label: list[int]
             ) -> dict[str, np.ndarray]:
        return {"prev": before, "alone": alone, "joined": joined, "y": np.array(label, dtype=int),
                "feats": context_features([normalize(t) for t in texts], alone, joined,
                                          before).reshape(-1, len(CONTEXT_FEATURES))}

    rows = switches.rows
    switch = part([texts[r] for r in rows], oof[rows], switches.read, switches.prev, [index[labels[r]] for r in rows])
    follow = part(follow_texts, read[:len(follow_texts)], read[len(follow_texts):], np.array(prev, dtype=int), y)
    follow["group"] = np.array(group, dtype=int)
    return switch, follow


def _accuracy(w: np.ndarray, theta: np.ndarray, part: dict[str, np.ndarray]) -> float:
    if not len(part["y"]):
        return 1.0
    g1, g2 = gates(theta, part["feats"])
    la = log_of(part["alone"])
    z = context_logits(la, log_of(part["joined"]) - la, w[part["prev"]], g1, g2)
    return float((z.argmax(1) == part["y"]).mean())


def _fit(parts: list[dict[str, np.ndarray]], keys: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    prev, alone, joined, feats, y = (np.concatenate([p[k] for p in parts])
                                     for k in ("prev", "alone", "joined", "feats", "y"))
    return fit_bias(prev, alone, joined, feats, y, keys, lam / len(y))


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


def fit_context(kb: KnowledgeBase, switches: Switches, texts: list[str], labels: list[str], oof: np.ndarray,
                classes: list[str], pipeline: Any, seed: int = 42,
                lambda_done: Callable[[int, int], None] = lambda done, total: None) -> dict[str, Any]:
    """The context bias and gates for the scorer ({"keys", "bias", "gate"}) and the figures behind them.
    `switches` come read (switch_turns, then cross_validate with their joined texts);
    `lambda_done(weights tried, weights)` after each regularisation weight of the grid."""
    switch, follow = _turns(switches, texts, labels, oof, classes, kb, pipeline, seed)
    keys = len(classes)
    # Without context: no bias, and the joined reading weighs nothing (a gate far below zero).
    zero, flat = np.zeros((keys, len(classes))), np.zeros((2, len(CONTEXT_FEATURES)))
    flat[1, 0] = -50.0
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
        lambda_done(len(scores), len(LAMBDAS))
    lam, acc_follow, acc_switch = choose_lambda(scores, base["switch"], len(follow["y"]))
    w, theta = _fit([switch, follow], keys, lam)
    return {"keys": classes, "bias": w, "gate": theta, "lambda": lam, "turns": int(len(switch["y"]) + len(follow["y"])),
            "without_context": base,
            "held_out": {"follow_ups": round(acc_follow, 4), "switch": round(acc_switch, 4)},
            "with_context": {"switch": _accuracy(w, theta, switch), "follow_ups": _accuracy(w, theta, follow)},
            "gate_weights": {name: dict(zip(CONTEXT_FEATURES, (round(float(t), 3) for t in row), strict=True))
                             for name, row in zip(("bias", "joined"), theta, strict=True)},
            "grid": [{"lambda": s[0], "follow_ups": round(s[1], 4), "switch": round(s[2], 4)} for s in scores]}
