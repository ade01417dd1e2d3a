"""Chatwoot's agent bot webhook: kefu answers a Chatwoot inbox's pending conversations.

The work is bot/integrations/chatwoot.py's; this route authenticates the event, reads it and answers
at once (Chatwoot opens a conversation whose webhook failed), the replies going out in the background.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from api.schemas import ErrorOut
from bot.errors import InvalidInputError, NotFoundError
from bot.integrations.chatwoot import ChatwootBot, authentic

router = APIRouter(prefix="/v1/integrations", tags=["integrations"],
                   responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
                              413: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}})

# The fields of Chatwoot's message event that kefu reads (app/models/message.rb, webhook_data); the
# others are accepted and ignored.
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "example": "message_created"},
        "id": {"type": "integer"}, "content": {"type": "string"},
        "message_type": {"type": "string", "example": "incoming"}, "private": {"type": "boolean"},
        "content_type": {"type": "string"}, "content_attributes": {"type": "object"},
        "account": {"type": "object", "properties": {"id": {"type": "integer"}}},
        "conversation": {"type": "object", "properties": {"id": {"type": "integer"},
                                                          "status": {"type": "string", "example": "pending"}}},
    },
}


class ChatwootOut(BaseModel):
    status: str = Field(..., description="answered (the reply is on its way to Chatwoot) or ignored")
    reason: str | None = Field(None, description="why an event was ignored")
    action: str | None = Field(None, description="what the bot did: answer, suggest, clarify or handoff")


@router.post("/chatwoot", response_model=ChatwootOut, response_model_exclude_none=True,
             openapi_extra={"requestBody": {"required": True,
                                            "content": {"application/json": {"schema": EVENT_SCHEMA}}}})
async def chatwoot(request: Request, token: Annotated[str | None, Query(
        max_length=256, description="KEFU_CHATWOOT_WEBHOOK_SECRET, if Chatwoot does not sign")] = None) -> Any:
    """A Chatwoot agent bot event: a pending conversation's new message is answered in Chatwoot."""
    bot: ChatwootBot | None = request.app.state.outbound.chatwoot
    if bot is None:
        raise NotFoundError("the Chatwoot integration is off: set KEFU_CHATWOOT_URL")
    raw = await request.body()
    if not authentic(bot.secret, raw, request.headers, token):
        raise HTTPException(401, "not from Chatwoot: a wrong or missing token or signature")
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInputError("the body is not JSON") from None
    return await asyncio.to_thread(bot.handle, request.app.state.conversations, event)
