"""The one reply type: what the bot (and the conversation around it) does with a message, and why a
conversation goes to a person (`Reason`, and the human entry each reason stands for).

The engine fills what it decided; the conversation service adds where it belongs (the session,
the stored message, the handoff); the API and the CLI show it as it is (`as_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from bot.language.model import IntentPrediction


class Reason(StrEnum):
    """Why a conversation goes to a person."""

    REQUESTED = "requested"
    COMPLAINT = "complaint"
    PROBLEM = "problem"
    LOW_CONFIDENCE = "low_confidence"
    REPEATED_FALLBACK = "repeated_fallback"
    OUT_OF_SCOPE = "out_of_scope"
    RECEPTION = "reception"  # not the bot's choice: the shop's reception mode sends the chat to a person


REASON_INTENT = {
    Reason.REQUESTED: "human.request",
    Reason.COMPLAINT: "human.complaint",
    Reason.PROBLEM: "human.problem",
    Reason.OUT_OF_SCOPE: "human.other",
    Reason.LOW_CONFIDENCE: "human.other",
    Reason.REPEATED_FALLBACK: "human.other",
    Reason.RECEPTION: "human.request",
}
INTENT_REASON = {
    "human.request": Reason.REQUESTED,
    "human.complaint": Reason.COMPLAINT,
    "human.problem": Reason.PROBLEM,
    "human.other": Reason.OUT_OF_SCOPE,
}


@dataclass(frozen=True)
class Reply:
    """What one shopper message produced."""

    route: str  # "faq" | "human"
    action: str  # "answer" | "suggest" | "clarify" | "handoff"
    intent: str | None
    confidence: float
    reply: str | None  # None while a person has the chat (the message went to them)
    reason: str | None = None
    suggestions: list[dict[str, str]] = field(default_factory=list)  # quick replies: {"intent", "title"}
    ranking: list[IntentPrediction] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)  # every answered entry (a message of several questions)
    session_id: str | None = None
    handoff: dict[str, Any] | None = None  # {"id", "status", "position"} when a person has or will have the chat
    message_id: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["confidence"] = round(self.confidence, 4)
        data["ranking"] = [p.as_dict() for p in self.ranking]
        return data
