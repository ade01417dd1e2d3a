"""The threshold chooser on synthetic out-of-fold probabilities."""

from __future__ import annotations

import numpy as np

from training.thresholds import HUMAN_GRID, MAX_FAQ_HANDOFF, MIN_HUMAN_RECALL, choose_thresholds, simulate

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


def _with_human_looking_faq(seed: int = 2) -> tuple[list[str], np.ndarray]:
    """As _data, with one FAQ row in eight carrying human mass between 0.1 and 0.7."""
    labels, probs = _data(seed)
    rng = np.random.default_rng(seed)
    for i, gold in enumerate(labels):
        if not gold.startswith("human.") and i % 8 == 1:
            mass = rng.uniform(0.1, 0.7)
            probs[i] = np.append(mass, probs[i][1:] / probs[i][1:].sum() * (1 - mass))
    return labels, probs


def test_the_handoff_mass_sends_at_most_the_budget_of_faq_examples_to_a_person() -> None:
    labels, probs = _with_human_looking_faq()
    chosen, _ = choose_thresholds(labels, probs, CLASSES)
    faq = np.array([not lab.startswith("human.") for lab in labels])

    def handed(h: float) -> float:
        return float((probs[:, 0] >= h)[faq].mean())

    assert handed(chosen["human"]) <= MAX_FAQ_HANDOFF
    lower = [float(h) for h in HUMAN_GRID if h < chosen["human"]]
    assert lower and handed(lower[-1]) > MAX_FAQ_HANDOFF  # the lowest bar within the budget
    assert chosen["human_chat"] == chosen["human"]


def test_rules_catching_more_messages_for_a_person_do_not_move_the_handoff_mass() -> None:
    """Only the answer, margin and quick-reply thresholds may follow the rules: a handful more ruled
    examples once took the chat's handoff mass from 0.5 to 0.35 and handed off FAQ turns. Rules exist
    for what the classifier misses: here they catch the 30% of messages for a person it is least
    sure of (chosen with the rest, the chat's mass moved from 0.8 to 0.85 on these)."""
    labels, probs = _with_human_looking_faq()
    gold_human = np.array([lab.startswith("human.") for lab in labels])
    ruled = gold_human & (probs[:, 0] <= np.quantile(probs[gold_human, 0], 0.3))
    alone, _ = choose_thresholds(labels, probs, CLASSES)
    with_rules, _ = choose_thresholds(labels, probs, CLASSES, ruled=ruled)
    assert ruled.sum() > 30
    assert (with_rules["human"], with_rules["human_chat"]) == (alone["human"], alone["human_chat"])
    point = simulate(labels, probs, CLASSES, with_rules["answer"], with_rules["margin"], with_rules["human"],
                     with_rules["suggest"], ruled=ruled)
    assert point["human_recall"] >= MIN_HUMAN_RECALL and point["risk"] <= 0.02


def test_a_recall_floor_missed_by_one_example_does_not_push_quick_replies_up() -> None:
    """919 of 1,000 messages for a person kept from the bot is 0.92 to two decimals: quick replies at 0.6
    stay, where the floor read exactly (it once raised a seed-42 model's from 0.6 to 0.7) puts them above what
    the unsure FAQ questions reach, and a lone message hands each of them off."""
    rows = ([("returns.fee", [0.0, 0.9, 0.05, 0.05])] * 1000  # sure FAQ questions
            + [("returns.fee", [0.45, 0.5, 0.03, 0.02])] * 30  # FAQ questions with human mass: the bar is 0.5
            + [("returns.fee", [0.35, 0.25, 0.3, 0.1])] * 800  # unsure: the right entry among three at 0.65
            + [("human.other", [0.95, 0.03, 0.01, 0.01])] * 919  # for a person, handed off
            + [("human.other", [0.35, 0.3, 0.2, 0.15])] * 81)  # for a person, offered quick replies at 0.6
    labels, probs = [r[0] for r in rows], np.array([r[1] for r in rows])
    chosen, _ = choose_thresholds(labels, probs, CLASSES)
    assert (chosen["human"], chosen["suggest"]) == (0.5, 0.6)
    point = simulate(labels, probs, CLASSES, chosen["answer"], chosen["margin"], chosen["human"], chosen["suggest"])
    assert point["human_recall"] == 0.919
    stricter = simulate(labels, probs, CLASSES, chosen["answer"], chosen["margin"], chosen["human"], 0.7)
    assert stricter["human_recall"] == 1.0 and stricter["faq_handoff"] > point["faq_handoff"]
