from __future__ import annotations

from bot.policy import Reason, Thresholds, decide
from bot.results import IntentPrediction as P

TH = Thresholds(answer=0.55, margin=0.15, suggest=0.6, human=0.35)


def test_confident_faq_entry_is_answered() -> None:
    d = decide([P("shipping.when", 0.9), P("shipping.eta", 0.05), P("human.other", 0.05)], TH)
    assert (d.action, d.intent, d.route) == ("answer", "shipping.when", "faq")


def test_rule_beats_a_confident_classifier() -> None:
    d = decide([P("returns.refund", 0.95), P("human.complaint", 0.05)], TH, rule=Reason.COMPLAINT)
    assert (d.action, d.intent, d.reason) == ("handoff", "human.complaint", Reason.COMPLAINT)


def test_human_entry_on_top_hands_off_with_its_reason() -> None:
    d = decide([P("human.problem", 0.5), P("returns.how", 0.4), P("size.fit", 0.1)], TH)
    assert (d.route, d.intent, d.reason) == ("human", "human.problem", Reason.PROBLEM)


def test_human_mass_hands_off_even_when_a_faq_entry_leads() -> None:
    d = decide([P("size.chart", 0.4), P("human.other", 0.2), P("human.problem", 0.2), P("size.fit", 0.2)], TH)
    assert (d.route, d.intent, d.reason) == ("human", "human.other", Reason.OUT_OF_SCOPE)


def test_close_runner_up_gives_suggestions_not_an_answer() -> None:
    d = decide([P("returns.fee", 0.45), P("returns.how", 0.40), P("human.other", 0.1), P("size.fit", 0.05)], TH)
    assert d.action == "suggest"
    assert [s.intent for s in d.suggestions[:2]] == ["returns.fee", "returns.how"]


def test_low_confidence_clarifies_once_then_hands_off() -> None:
    ranking = [P("size.fit", 0.18), P("size.chart", 0.15), P("shipping.eta", 0.12), P("human.other", 0.1),
               P("payment.cod", 0.1), P("returns.fee", 0.1), P("payment.invoice", 0.1), P("size.stock", 0.15)]
    first = decide(ranking, TH, fallbacks=0)
    second = decide(ranking, TH, fallbacks=1)
    assert (first.action, first.reason) == ("clarify", Reason.LOW_CONFIDENCE)
    assert (second.action, second.reason) == ("handoff", Reason.REPEATED_FALLBACK)


def test_a_weak_human_entry_on_top_does_not_hand_off_alone() -> None:
    # Human entries together stay under the threshold: the FAQ side is offered, not a person.
    d = decide([P("human.complaint", 0.25), P("payment.discount", 0.24), P("payment.invoice", 0.23),
                P("payment.methods", 0.2), P("size.fit", 0.08)], TH)
    assert d.action == "suggest" and d.route == "faq"
    assert [s.intent for s in d.suggestions] == ["payment.discount", "payment.invoice", "payment.methods"]


def test_likely_human_message_is_never_answered_even_if_an_faq_entry_looks_sure() -> None:
    d = decide([P("shipping.track", 0.6), P("human.complaint", 0.38), P("size.fit", 0.02)],
               Thresholds(answer=0.5, margin=0.1, suggest=0.6, human=0.35))
    assert (d.action, d.reason) == ("handoff", Reason.COMPLAINT)


def test_clear_small_talk_is_answered_below_the_faq_threshold() -> None:
    th = Thresholds(answer=0.85, margin=0.1, suggest=0.6, human=0.5)
    d = decide([P("smalltalk.thanks", 0.7), P("size.fit", 0.1), P("human.other", 0.2)], th)
    assert (d.action, d.intent) == ("answer", "smalltalk.thanks")
    # An FAQ entry as sure gets quick replies instead: a wrong answer there misleads.
    d = decide([P("size.fit", 0.7), P("size.chart", 0.1), P("human.other", 0.2)], th)
    assert d.action == "suggest"
