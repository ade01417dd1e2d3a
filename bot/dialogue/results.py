"""The one reply type: what the bot (and the conversation around it) does with a message.

The engine fills what it decided; the conversation service adds where it belongs (the session,
the stored message, the handoff); the API and the CLI show it as it is (`as_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bot.language.model import IntentPrediction


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
