"""Typed results shared by the engine, the CLI, the API and the handoff payload."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class IntentPrediction:
    """One catalogue id with its probability."""

    intent: str
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class BotReply:
    """What the bot does with one message."""

    route: str  # "faq" | "human"
    action: str  # "answer" | "suggest" | "clarify" | "handoff"
    intent: str | None
    confidence: float
    reply: str
    reason: str | None = None
    suggestions: list[dict[str, str]] = field(default_factory=list)
    ranking: list[IntentPrediction] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)  # every answered entry (multi-question)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ranking"] = [p.as_dict() for p in self.ranking]
        return data
