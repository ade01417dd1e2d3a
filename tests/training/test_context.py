"""How training picks the strength of the context bias from its held-out grid."""

from __future__ import annotations

from training.context import MAX_SWITCH_LOSS, choose_lambda


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
