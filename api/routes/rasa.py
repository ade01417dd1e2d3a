"""Rasa's REST channel, spoken by kefu: a widget or a bridge written for Rasa talks to kefu unchanged.

The shapes are Rasa's own (RasaHQ/rasa, 3.x):
- rasa/core/channels/rest.py, `RestInput`: `GET /webhooks/rest/` answers `{"status": "ok"}`;
  `POST /webhooks/rest/webhook` reads `sender`, `message` and `metadata` from the JSON body and
  answers the list that a `CollectingOutputChannel` collected.
- rasa/core/channels/channel.py, `CollectingOutputChannel`: each item is `_message(recipient_id,
  text, image, buttons, attachment, custom)` with the None values left out; `send_text_message`
  splits a text at blank lines (`text.strip().split("\\n\\n")`), one item each; buttons are
  `{"title", "payload"}` (`send_text_with_buttons`); `custom` holds any JSON (`send_custom_json`).

kefu's answer is never an empty list (a bridge reads `response[0]["text"]`): while a person has the
chat, the bot stays silent with one item whose text is "". Every item carries kefu's reading in
`custom`; quick replies are also Rasa buttons whose payload is the title, the message a click sends.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints, field_validator

from api.deps import ConversationsDep, check_session_rate
from api.schemas import ErrorOut
from bot.dialogue.engine import MAX_CHARS
from bot.dialogue.results import Reply
from bot.language.normalize import check_text
from bot.service.schema import Message

PREFIX = "/webhooks/rest"  # Rasa mounts a channel's blueprint at /webhooks/<name>
CHANNEL = "rasa"
SENDER_CHARS = 256

router = APIRouter(prefix=PREFIX, tags=["rasa"],
                   responses={422: {"model": ErrorOut}, 429: {"model": ErrorOut}, 409: {"model": ErrorOut},
                              503: {"model": ErrorOut}})


# A message to Rasa's REST channel. Fields Rasa does not read either (input_channel...) are ignored.
class RasaMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sender: Annotated[StrictStr, StringConstraints(min_length=1, max_length=SENDER_CHARS)] | Annotated[
        StrictInt, Field(ge=-(2**63), le=2**63 - 1)] = Field(
        ..., description="the conversation's user id, chosen by the client (Rasa str()s a number, as the "
                         "Chatwoot bridge sends); the same sender continues the same chat")
    message: StrictStr = Field(..., max_length=MAX_CHARS, description="what the shopper wrote")
    metadata: dict[str, Any] | None = Field(None, description="accepted as Rasa does; kefu does not use it")

    _check = field_validator("message")(lambda v: check_text(v, what="message", max_chars=MAX_CHARS))


class RasaButton(BaseModel):
    title: str
    payload: str


# One item of Rasa's answer list (CollectingOutputChannel._message, None values left out).
class RasaMessageOut(BaseModel):
    recipient_id: str
    text: str
    buttons: list[RasaButton] | None = None
    custom: dict[str, Any] = Field(..., description="kefu's reading: role, route, action, intent, confidence, "
                                                    "suggestions, handoff, reason, message_id")


class StatusOut(BaseModel):
    status: str


@router.get("/", response_model=StatusOut)
def status() -> Any:
    """Rasa's channel health check."""
    return {"status": "ok"}


@router.post("/webhook", response_model=list[RasaMessageOut])
def webhook(body: RasaMessageIn, conv: ConversationsDep, request: Request) -> JSONResponse:
    """One message from a Rasa client; the answer is Rasa's list of bot messages, never empty."""
    sender = str(body.sender)
    session_id = conv.channel_session(CHANNEL, sender)
    check_session_rate(request, session_id)
    reply, said = conv.channel_chat(session_id, body.message)
    return JSONResponse(rasa_messages(sender, reply, said))


def rasa_messages(sender: str, reply: Reply, said: list[Message]) -> list[dict[str, Any]]:
    """What people said since the sender's previous message, then the bot's reply, as Rasa's items."""
    reading = {"route": reply.route, "action": reply.action, "intent": reply.intent,
               "confidence": round(reply.confidence, 4), "suggestions": reply.suggestions,
               "handoff": reply.handoff, "reason": reply.reason}
    items = [item for m in said for item in _items(sender, m.text, {**reading, "role": m.role, "message_id": m.id})]
    buttons = [{"title": s["title"], "payload": s["title"]} for s in reply.suggestions]
    if reply.reply is None and items:  # the bot is silent: what the agent said is the answer
        return items
    mine = _items(sender, reply.reply or "", {**reading, "role": "bot", "message_id": reply.message_id})
    if buttons:
        mine[-1]["buttons"] = buttons
    return items + mine


def _items(sender: str, text: str, custom: dict[str, Any]) -> list[dict[str, Any]]:
    """Rasa's split of a text at blank lines (parts left empty by it dropped, one item at least)."""
    parts = [p for p in text.strip().split("\n\n") if p.strip()] or [""]
    return [{"recipient_id": sender, "text": p, "custom": custom} for p in parts]
