"""The decision thresholds, owned here: their defaults, and the ones in service (`thresholds_for`: those
training chose from its risk-coverage curve, then the operator's `KEFU_POLICY__*`). bot.dialogue.policy
decides with them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


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
    # In a chat, a message no rule sent to a person goes to one only when the human entries clearly
    # win, at this mass; below it the bot offers its likely entries first (the shopper can still ask
    # for a person, and a third unsure turn in a row hands off).
    human_chat: float = 0.5
    # How many entries a suggestion offers.
    suggest_k: int = 3


def thresholds_for(trained: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None) -> Thresholds:
    """The thresholds in service, resolved in this one place: the defaults above, then those training
    chose (the model's metadata), then the operator's overrides (settings `KEFU_POLICY__*`; None keeps)."""
    known = {f.name for f in fields(Thresholds)}
    th = replace(Thresholds(), **{k: v for k, v in (trained or {}).items() if k in known})
    return replace(th, **{k: v for k, v in (overrides or {}).items() if k in known and v is not None})
