"""How training fits the conversation's part of the model: the strength of the context bias from its
held-out grid, and the gates that weigh the message alone against the message joined to the previous one."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from scipy.optimize import check_grad, minimize

from bot.language.model import CONTEXT_FEATURES, context_features, gates
from training.context import MAX_SWITCH_LOSS, _accuracy, candidates, choose_lambda, fit_bias, switch_turns


def test_the_strongest_regularisation_within_one_standard_error_of_the_best_is_kept() -> None:
    # 2,000 follow-ups: one standard error of 0.875 is about 0.0074.
    grid = [(0.01, 0.8736, 0.915), (0.03, 0.8748, 0.914), (0.1, 0.8706, 0.913), (0.3, 0.8595, 0.913),
            (1.0, 0.8479, 0.913)]
    assert choose_lambda(grid, 0.915, 2000)[0] == 0.1
    # Few follow-ups, so a wide error: the strongest of those close enough.
    assert choose_lambda(grid, 0.915, 100)[0] == 1.0
    # Many, so a narrow one: the best.
    assert choose_lambda(grid, 0.915, 1_000_000)[0] == 0.03


def test_a_lambda_that_costs_new_questions_is_not_kept() -> None:
    grid = [(0.01, 0.90, 0.90), (0.1, 0.89, 0.90 - 2 * MAX_SWITCH_LOSS), (1.0, 0.80, 0.90)]
    assert choose_lambda(grid, 0.90, 100)[0] == 0.01  # 0.1 is within one error, but costs new questions
    assert choose_lambda(grid, 0.90, 5)[0] == 1.0  # a wider error reaches 1.0
    # When every lambda costs new questions, the strongest is kept.
    assert choose_lambda(grid[:2], 0.95, 100)[0] == 0.1


def _turns(n: int, classes: int, seed: int) -> tuple[np.ndarray, ...]:
    """Synthetic turns: the message alone points at a random entry, the message joined to the previous
    one at the right entry when the message is a fragment (ends with 呢), at random otherwise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(classes, size=n)
    fragment = rng.random(n) < 0.5
    alone = rng.dirichlet(np.ones(classes), size=n)
    alone[~fragment, :] *= 0.1
    alone[~fragment, y[~fragment]] += 0.9  # a full question is clear on its own
    joined = rng.dirichlet(np.ones(classes), size=n)
    joined[fragment, :] *= 0.2
    joined[fragment, y[fragment]] += 0.8  # a fragment is clear with what came before
    norms = ["那这个呢" if f else "这个什么时候发货啊能快点吗" for f in fragment]
    prev = rng.integers(classes, size=n)
    return prev, alone, joined, context_features(norms, alone, joined, prev), y


def test_the_gates_learn_when_the_joined_reading_is_the_one_to_trust() -> None:
    classes = 6
    prev, alone, joined, feats, y = _turns(600, classes, seed=1)
    w, theta = fit_bias(prev, alone, joined, feats, y, classes, lam=1e-3)
    part = {"prev": prev, "alone": alone, "joined": joined, "feats": feats, "y": y}
    flat = np.zeros_like(theta)
    flat[1, 0] = -50.0  # no weight on the joined reading
    before, after = _accuracy(np.zeros_like(w), flat, part), _accuracy(w, theta, part)
    assert before < 0.8 and after > 0.95
    g1, g2 = gates(theta, feats)
    fragment = feats[:, CONTEXT_FEATURES.index("ends_with_ne")] == 1
    assert g2[fragment].mean() > 0.8 > 0.2 > g2[~fragment].mean()


@pytest.mark.parametrize("scored", [None, 3])
def test_the_fit_follows_the_true_gradient(scored: int | None) -> None:
    # Over every entry, and over each turn's likeliest three of six (a large catalogue's fit).
    classes = 4 if scored is None else 6
    prev, alone, joined, feats, y = _turns(40, classes, seed=2)
    captured = {}

    def spy(fun, x0, **kwargs):  # the objective fit_bias hands to the optimiser
        captured["fun"] = fun
        return minimize(fun, x0, **kwargs)

    with mock.patch("training.context.minimize", spy), mock.patch("training.context.CANDIDATES", scored or classes):
        fit_bias(prev, alone, joined, feats, y, classes, lam=0.01)
    fun = captured["fun"]
    x = np.random.default_rng(3).normal(scale=0.3, size=classes * classes + 2 * feats.shape[1])
    error = check_grad(lambda v: fun(v)[0], lambda v: fun(v)[1], x)
    assert error < 1e-5 * max(1.0, float(np.linalg.norm(fun(x)[1])))


def test_a_large_catalogues_fit_scores_each_turn_over_its_likely_entries_and_learns_the_same() -> None:
    classes = 40
    prev, alone, joined, feats, y = _turns(800, classes, seed=4)
    cand = candidates(alone, joined, prev, y, 8)
    assert cand.shape == (800, 8) and all(len(set(c)) == 8 for c in cand)
    assert (cand == y[:, None]).any(1).all() and (cand == prev[:, None]).any(1).all()  # its own and the previous
    other = (y + 1 + np.arange(len(y)) % (classes - 1)) % classes  # labels neither reading likes
    assert (candidates(alone, joined, prev, other, 8) == other[:, None]).any(1).all()
    assert (cand == np.maximum(alone, joined).argmax(1)[:, None]).any(1).all()  # the likeliest reading
    assert (candidates(alone, joined, prev, y, classes) == np.arange(classes)).all()  # few entries: all of them
    part = {"prev": prev, "alone": alone, "joined": joined, "feats": feats, "y": y}
    every = fit_bias(prev, alone, joined, feats, y, classes, lam=1e-3)
    with mock.patch("training.context.CANDIDATES", 8):
        likely = fit_bias(prev, alone, joined, feats, y, classes, lam=1e-3)
    # Read over every entry, as serving reads: the same turns right, nearly the same gates.
    assert abs(_accuracy(*likely, part) - _accuracy(*every, part)) <= 0.01 and _accuracy(*likely, part) > 0.95
    assert np.abs(gates(likely[1], feats)[1] - gates(every[1], feats)[1]).mean() < 0.05


def test_switch_turns_join_each_drawn_example_to_an_example_of_its_previous_entry() -> None:
    texts = [f"问题{i}" for i in range(40)]
    labels = ["human.other" if i % 4 == 0 else ("shipping.when" if i % 4 == 1 else "size.chart") for i in range(40)]
    full, half = switch_turns(texts, labels, seed=7), switch_turns(texts, labels, seed=7, share=0.5)
    assert list(full.rows) == list(range(40)) and len(half.rows) == 20 and set(half.rows) < set(full.rows)
    classes = sorted(set(labels))
    for s in (full, half):
        by_example = s.joined_by_example(len(texts))
        assert [i for i, j in enumerate(by_example) if j is not None] == [int(r) for r in s.rows]
        for r, prev, joined in zip(s.rows, s.prev, s.joined, strict=True):
            before, after = joined.split("，")
            assert after == texts[r] and labels[texts.index(before)] == classes[prev]
    assert "human.other" in {classes[p] for p in full.prev}  # a chat goes on after a handoff
    # A console run's share is the same draw, thinned: the full run's turns for those examples.
    assert all(full.joined[r] == j for r, j in zip(half.rows, half.joined, strict=True))


def test_a_large_catalogue_draws_a_sample_of_its_examples_as_new_questions() -> None:
    texts = [f"问题{i}" for i in range(40)]
    labels = ["shipping.when" if i % 2 else "size.chart" for i in range(40)]
    with mock.patch("training.context.MAX_TURNS", 10):
        drawn = switch_turns(texts, labels, seed=7)
    assert len(drawn.rows) == len(set(drawn.rows)) == 10 and len(drawn.joined) == len(drawn.prev) == 10
