"""The shopper's side: chat, history and the event stream of one session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sse_starlette.sse import EventSourceResponse

from api.deps import ConversationsDep, check_session_rate
from api.schemas import SESSION_ID, ChatReply, ChatRequest, ErrorOut, MessagesOut

SessionId = Annotated[str, Path(pattern=SESSION_ID, description="the session id of the first reply")]

router = APIRouter(prefix="/v1/chat", tags=["chat"],
                   responses={422: {"model": ErrorOut}, 404: {"model": ErrorOut}, 429: {"model": ErrorOut},
                              503: {"model": ErrorOut}})


@router.post("", response_model=ChatReply)
def chat(body: ChatRequest, conv: ConversationsDep, request: Request) -> Any:
    """Send one message; the reply comes from the bot, or says a person is coming."""
    check_session_rate(request, body.session_id)
    return ChatReply.model_validate(conv.chat(body.session_id, body.message))


@router.get("/{session_id}/messages", response_model=MessagesOut)
def messages(session_id: SessionId, conv: ConversationsDep,
             after: Annotated[int, Query(ge=0, le=2**63 - 1, description="only messages with a larger id")] = 0) -> Any:
    """The conversation so far (or since message `after`), for reloads and polling."""
    return {"session_id": session_id, "messages": conv.history(session_id, after)}


@router.get("/{session_id}/events")
async def events(session_id: SessionId, conv: ConversationsDep) -> EventSourceResponse:
    """Server-sent events: every new message in this session (agents' replies included)."""
    await asyncio.to_thread(conv.store.get_session, session_id)  # 404 for unknown sessions

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with conv.events.subscribe(f"session:{session_id}") as queue:
            yield {"event": "ready", "data": "{}"}
            while True:
                event = await queue.get()
                yield {"event": event["type"], "data": json.dumps(event, ensure_ascii=False)}

    return EventSourceResponse(stream(), ping=15)
