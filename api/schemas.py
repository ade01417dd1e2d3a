"""Request and response bodies, split by direction."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

MAX_CHARS = 1000


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must not be empty or only whitespace")
    return v


# A shopper's message to the bot.
class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: StrictStr | None = Field(None, max_length=64, description="from a previous reply; omit to start")
    message: StrictStr = Field(..., max_length=MAX_CHARS, description="what the shopper wrote")

    _check = field_validator("message")(_not_blank)


# The handoff a reply refers to.
class HandoffRef(BaseModel):
    id: int
    status: str
    position: int = Field(0, description="place in the waiting queue, 1 = next")


class Suggestion(BaseModel):
    intent: str
    title: str


# The bot's (or the queue's) answer to one message.
class ChatReply(BaseModel):
    session_id: str
    route: str = Field(..., description="faq | human")
    intent: str | None
    confidence: float
    reply: str | None = Field(..., description="text to show; null while a person has the chat")
    handoff: HandoffRef | None
    suggestions: list[Suggestion] = []
    reason: str | None = None
    message_id: int


class MessageOut(BaseModel):
    id: int
    role: str
    text: str
    intent: str | None = None
    author: str | None = None
    created_at: str | None = None


class MessagesOut(BaseModel):
    session_id: str
    messages: list[MessageOut]


# An agent's reply in the chat.
class AgentMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: StrictStr = Field(..., max_length=MAX_CHARS)

    _check = field_validator("text")(_not_blank)


# An agent closes a handoff, optionally saying what the message really was.
class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: StrictStr | None = Field(None, max_length=64, description="catalogue id")
    note: StrictStr | None = Field(None, max_length=2000)


class HandoffOut(BaseModel):
    id: int
    session_id: str
    status: str
    reason: str
    intent: str | None
    guesses: list[dict[str, Any]]
    last_message: str
    agent: str | None
    label: str | None
    note: str | None
    created_at: str | None
    assigned_at: str | None
    resolved_at: str | None
    position: int | None = None
    transcript: list[MessageOut] | None = None


class HandoffsOut(BaseModel):
    data: list[HandoffOut]
    count: int


# What the chat widget reads when it starts.
class QuickReply(BaseModel):
    family: str | None = None
    label: str
    message: str


class WidgetOut(BaseModel):
    shop_name: str
    assistant_name: str
    greeting: str
    quick_replies: list[QuickReply]
    handoff_message: str


class CatalogueEntry(BaseModel):
    id: str
    title: str
    family: str


class CatalogueOut(BaseModel):
    data: list[CatalogueEntry]
    count: int


class ErrorOut(BaseModel):
    error: str
    message: str
    detail: Any | None = None
