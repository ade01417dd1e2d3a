"""The threshold chooser on synthetic out-of-fold probabilities."""

from __future__ import annotations

import numpy as np

from training.thresholds import MIN_HUMAN_RECALL, choose_thresholds, simulate

CLASSES = ["human.other", "returns.fee", "returns.how", "shipping.when"]


def _data(seed: int = 0) -> tuple[list[str], np.ndarray]:
    """FAQ rows mostly sure of their entry, a band of confusable ones, and human rows."""
    rng = np.random.default_rng(seed)
    labels, rows = [], []
    for i in range(600):
        gold = CLASSES[1 + i % 3] if i % 4 else "human.other"
        p = rng.dirichlet(np.ones(4) * 0.5) * 0.3
        sure = rng.uniform(0.3, 1.0)
        p[CLASSES.index(gold)] += sure * 3
        if gold.startswith("returns") and i % 5 == 0:  # fee and how confused
            p[1] = p[2] = max(p[1], p[2])
        labels.append(gold)
        rows.append(p / p.sum())
    return labels, np.array(rows)


def test_chosen_point_meets_the_risk_target_and_keeps_human_recall() -> None:
    labels, probs = _data()
    chosen, curve = choose_thresholds(labels, probs, CLASSES, target_risk=0.02)
    point = simulate(labels, probs, CLASSES, chosen["answer"], chosen["margin"], chosen["human"], chosen["suggest"])
    assert point["risk"] <= 0.02
    assert point["human_recall"] >= MIN_HUMAN_RECALL
    assert point["coverage"] > 0.5
    # The curve is monotone: a higher answer threshold never answers more.
    coverages = [p["coverage"] for p in sorted(curve, key=lambda p: p["answer"])]
    assert coverages == sorted(coverages, reverse=True)


def test_a_looser_risk_target_answers_at_least_as_much() -> None:
    labels, probs = _data(1)
    strict, _ = choose_thresholds(labels, probs, CLASSES, target_risk=0.01)
    loose, _ = choose_thresholds(labels, probs, CLASSES, target_risk=0.1)
    cov = lambda th: simulate(labels, probs, CLASSES, th["answer"], th["margin"], th["human"])["coverage"]  # noqa: E731
    assert cov(loose) >= cov(strict)
