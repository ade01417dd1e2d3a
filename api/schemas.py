"""Request and response bodies, split by direction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from bot.dialogue.engine import MAX_CHARS
from bot.language.normalize import check_text

# Session ids are the server's tokens (URL-safe base64); anything else is refused before any lookup.
SESSION_ID = r"^[A-Za-z0-9_-]{1,64}$"
NOTE_CHARS = 2000


def _message(v: str) -> str:
    return check_text(v, what="text", max_chars=MAX_CHARS)


def _note(v: str | None) -> str | None:
    return None if v is None else check_text(v, what="note", max_chars=NOTE_CHARS, blank_ok=True)


# A shopper's message to the bot.
class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: StrictStr | None = Field(None, pattern=SESSION_ID, description="from a previous reply; omit to start")
    message: StrictStr = Field(..., max_length=MAX_CHARS, description="what the shopper wrote")

    _check = field_validator("message")(_message)


# The handoff a reply refers to.
class HandoffRef(BaseModel):
    id: int
    status: str
    position: int = Field(0, description="place in the waiting queue, 1 = next")


class Suggestion(BaseModel):
    intent: str
    title: str


# The bot's (or the queue's) answer to one message: bot.dialogue.results.Reply, as the API shows it.
class ChatReply(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    session_id: str
    route: str = Field(..., description="faq | human")
    action: str = Field(..., description="answer | suggest (quick replies) | clarify (asks to rephrase) | handoff")
    intent: str | None
    confidence: float
    reply: str | None = Field(..., description="text to show; null while a person has the chat")
    handoff: HandoffRef | None
    suggestions: list[Suggestion] = []
    reason: str | None = None
    intents: list[str] = Field([], description="every entry answered: several questions, or two unsure ones")
    message_id: int

    _round = field_validator("confidence")(lambda v: round(v, 4))


# A shopper's 有帮助 / 没帮助 on one of the bot's answers.
class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: StrictInt = Field(..., ge=1, le=2**63 - 1, description="the message_id of the bot's answer")
    helpful: StrictBool


class FeedbackOut(BaseModel):
    message_id: int
    helpful: bool


# A shopper's rating of the service after an agent ended the conversation.
class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: StrictInt = Field(..., ge=1, le=5, description="1 (very dissatisfied) .. 5 (very satisfied)")
    comment: StrictStr | None = Field(None, max_length=NOTE_CHARS)

    _check = field_validator("comment")(_note)


class RatingOut(BaseModel):
    handoff_id: int
    score: int
    comment: str | None


# An order the shop's checkout reports for a chat session.
class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: StrictStr = Field(..., pattern=SESSION_ID, description="window.kefu.sessionId() on the shop's page")
    order_id: StrictStr = Field(..., pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="the shop's order number")
    amount: Decimal = Field(..., ge=0, max_digits=14, decimal_places=2, description="in yuan")
    at: AwareDatetime | None = Field(None, description="when it was placed, with its offset (default: now)")


class OrderOut(BaseModel):
    order_id: str
    session_id: str
    amount: Decimal
    at: str
    new: bool = Field(..., description="false when this order had been reported before (nothing changed)")


class MessageOut(BaseModel):
    id: int
    role: str
    text: str
    intent: str | None = None
    author: str | None = None
    created_at: str | None = None
    to: str | None = None  # a transfer (agents only): the colleague who got the chat
    after: int | None = None  # a chat back in the queue (agents only): seconds its shopper waited for the agent
    image: dict[str, Any] | None = None  # a picture the shopper sent: {"id", "type", "width", "height"}


class MessagesOut(BaseModel):
    session_id: str
    messages: list[MessageOut]


# An agent's reply in the chat.
class AgentMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: StrictStr = Field(..., max_length=MAX_CHARS)

    _check = field_validator("text")(_message)


# An agent closes a handoff, optionally saying what the message really was.
class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: StrictStr | None = Field(None, max_length=64, pattern=r"^[a-z0-9_]+\.[a-z0-9_]+$",
                                    description="catalogue id")
    note: StrictStr | None = Field(None, max_length=NOTE_CHARS)

    _check = field_validator("note")(_note)


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
    waiting_since: str | None = None  # the shopper's first message since the agent's last (open ones)
    transcript: list[MessageOut] | None = None


class HandoffsOut(BaseModel):
    data: list[HandoffOut]
    count: int
    next: int | None = None  # resolved: the `before` of the next page (None: this was the last)


# The bot's answers to the shopper's latest message, as drafts for the agent.
class Draft(BaseModel):
    intent: str
    title: str
    confidence: float
    text: str = Field(..., description="the answer as the bot would send it, for the agent to edit")


class ShopperMessage(BaseModel):
    id: int
    text: str
    created_at: str | None


class DraftsOut(BaseModel):
    handoff_id: int
    message: ShopperMessage | None = Field(..., description="the shopper's latest message, which the drafts answer")
    drafts: list[Draft]


# 快捷短语: the shop's canned replies, filled with its facts.
class PhraseOut(BaseModel):
    id: int
    title: str
    text: str
    keywords: list[str]


class PhrasesOut(BaseModel):
    data: list[PhraseOut]
    count: int


# 快捷短语 as the shop's manager edits them: the text is a template, filled when agents read it.
class PhraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: StrictStr = Field(..., max_length=30)
    keywords: list[StrictStr] = Field([], max_length=10, description="what else it is found by, each 1-20 characters")
    text: StrictStr = Field(..., max_length=500, description="placeholders from shop.yml ({name}) and {agent}")

    @field_validator("title", "text")
    @classmethod
    def _shown(cls, v: str, info: Any) -> str:
        return check_text(v, what=info.field_name, max_chars=500).strip()

    @field_validator("keywords")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        words = [check_text(k, what="keyword", max_chars=20).strip() for k in v]
        if "\n" in "".join(words):
            raise ValueError("a keyword is one line")
        return words


class PhrasesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phrases: list[PhraseIn] = Field(..., max_length=500)
    version: StrictStr = Field(..., max_length=64, description="from the GET this edit started from")


class PhraseTemplate(BaseModel):
    title: str
    keywords: list[str]
    text: str


class PhrasesFileOut(BaseModel):
    data: list[PhraseTemplate]
    version: str


# An agent gives a chat to a colleague, with a note only agents see.
class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: StrictStr = Field(..., min_length=1, max_length=64, description="the colleague's agent name")
    note: StrictStr | None = Field(None, max_length=NOTE_CHARS)

    _check = field_validator("note")(_note)


class TransferOut(BaseModel):
    handoff: HandoffOut
    to: str = Field(..., description="who has the chat now")
    note: str
    message: MessageOut = Field(..., description="the transfer in the agents' transcript")
    from_: str = Field(..., alias="from", description="who gave it")


class AgentOut(BaseModel):
    name: str
    display_name: str = Field(..., description="what shoppers see (KEFU_AGENT_NAMES), else the name")
    status: str = Field("away", description="online | busy | away, as it counts now (away when not heard from)")
    chats: int = Field(0, description="open chats assigned to them")


class AgentsOut(BaseModel):
    me: str
    data: list[AgentOut]


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
    texts: dict[str, str] = Field(description="the widget's labels, in the shop's voice")
    image_max_bytes: int = Field(0, description="the largest picture a shopper may send (KEFU_MAX_IMAGE_BYTES)")


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
