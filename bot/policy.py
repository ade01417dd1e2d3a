"""The routing policy: a small, separately tested decision from a ranking.

Bands (thresholds come from training's risk-coverage curve, or config):
- answer: the best FAQ entry is sure enough and clear of the runner-up;
- suggest: unsure, but a few FAQ entries together are likely: offer them as quick replies;
- clarify: ask once to rephrase; the next fallback in a row hands off (`repeated_fallback`);
- handoff: a rule fired, or the human.* entries together are likely.

The human mass is checked before answering: a message that is likely a person's job never
gets an FAQ answer, however sure the best FAQ entry looks on its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

from bot.results import IntentPrediction

log = logging.getLogger(__name__)


class Reason(StrEnum):
    """Why a conversation goes to a person."""

    REQUESTED = "requested"
    COMPLAINT = "complaint"
    PROBLEM = "problem"
    LOW_CONFIDENCE = "low_confidence"
    REPEATED_FALLBACK = "repeated_fallback"
    OUT_OF_SCOPE = "out_of_scope"


REASON_INTENT = {
    Reason.REQUESTED: "human.request",
    Reason.COMPLAINT: "human.complaint",
    Reason.PROBLEM: "human.problem",
    Reason.OUT_OF_SCOPE: "human.other",
    Reason.LOW_CONFIDENCE: "human.other",
    Reason.REPEATED_FALLBACK: "human.other",
}
INTENT_REASON = {
    "human.request": Reason.REQUESTED,
    "human.complaint": Reason.COMPLAINT,
    "human.problem": Reason.PROBLEM,
    "human.other": Reason.OUT_OF_SCOPE,
}


SMALLTALK_ANSWER = 0.5


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds; training stores tuned values in the model metadata."""

    # Answer only when the best FAQ entry has at least this probability...
    answer: float = 0.7
    # ...and leads the runner-up by at least this margin (top-2 margin rule).
    margin: float = 0.1
    # Offer quick replies when the top FAQ entries together reach this probability.
    suggest: float = 0.7
    # Hand off when the human.* entries together reach this probability.
    human: float = 0.5
    # How many entries a suggestion offers.
    suggest_k: int = 3


@dataclass(frozen=True)
class Decision:
    """The policy's verdict for one message."""

    action: str  # answer | suggest | clarify | handoff
    intent: str | None
    confidence: float
    reason: Reason | None = None
    suggestions: list[IntentPrediction] = field(default_factory=list)

    @property
    def route(self) -> str:
        return "human" if self.action == "handoff" else "faq"


def decide(ranking: list[IntentPrediction], th: Thresholds, *,
           rule: Reason | None = None, fallbacks: int = 0) -> Decision:
    """Decide what to do with one message given its ranking and the session's fallbacks."""
    top = ranking[0]
    if rule is not None:
        return Decision("handoff", REASON_INTENT[rule], top.confidence, rule)
    human = [p for p in ranking if p.intent.startswith("human.")]
    faq = [p for p in ranking if not p.intent.startswith("human.")]
    p_human = sum(p.confidence for p in human)
    if human and p_human >= th.human:
        best = human[0]
        log.info("handoff: human mass %.2f, best %s %.2f", p_human, best.intent, best.confidence)
        return Decision("handoff", best.intent, p_human, INTENT_REASON.get(best.intent, Reason.OUT_OF_SCOPE))
    best, second = faq[0], faq[1] if len(faq) > 1 else IntentPrediction("", 0.0)
    if best.confidence >= th.answer and best.confidence - second.confidence >= th.margin:
        return Decision("answer", best.intent, best.confidence)
    # Small talk costs nothing when wrong, and quick replies titled 谢谢 would be silly: a clear
    # favourite is answered below the FAQ threshold.
    if (best.intent.startswith("smalltalk.") and best.confidence >= SMALLTALK_ANSWER
            and best.confidence - second.confidence >= th.margin):
        return Decision("answer", best.intent, best.confidence)
    options = faq[: th.suggest_k]
    if fallbacks == 0 and sum(p.confidence for p in options) >= th.suggest:
        log.info("suggest: %s", [(p.intent, round(p.confidence, 2)) for p in options])
        return Decision("suggest", best.intent, best.confidence, suggestions=options)
    if fallbacks >= 1:
        return Decision("handoff", "human.other", best.confidence, Reason.REPEATED_FALLBACK)
    log.info("clarify: best %s %.2f below %.2f", best.intent, best.confidence, th.answer)
    return Decision("clarify", best.intent, best.confidence, Reason.LOW_CONFIDENCE)
