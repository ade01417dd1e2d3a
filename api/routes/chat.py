"""The shopper's side: chat, history and the event stream of one session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse

from api.deps import ConversationsDep, check_session_rate, in_turn_thread
from api.schemas import (
    SESSION_ID,
    ChatReply,
    ChatRequest,
    ErrorOut,
    FeedbackIn,
    FeedbackOut,
    MessagesOut,
    RatingIn,
    RatingOut,
)
from bot.figures.outcomes import give_feedback, rate
from bot.service.waiting import shopper_handoff

SessionId = Annotated[str, Path(pattern=SESSION_ID, description="the session id of the first reply")]

router = APIRouter(prefix="/v1/chat", tags=["chat"],
                   responses={422: {"model": ErrorOut}, 404: {"model": ErrorOut}, 429: {"model": ErrorOut},
                              409: {"model": ErrorOut}, 503: {"model": ErrorOut}})


@router.post("", response_model=ChatReply)
async def chat(body: ChatRequest, conv: ConversationsDep, request: Request) -> Any:
    """Send one message; the reply comes from the bot, or says a person is coming."""

    def turn() -> ChatReply:  # the blocking part (the limiter may be Redis, the store a database)
        check_session_rate(request, body.session_id)
        return ChatReply.model_validate(conv.chat(body.session_id, body.message))

    # One hand-off to a thread and back: a plain `def` route costs FastAPI three (its dependencies,
    # the route, then the check of its answer), and the answer checked here is not checked again.
    return await in_turn_thread(turn)


@router.post("/{session_id}/feedback", response_model=FeedbackOut)
def feedback(session_id: SessionId, body: FeedbackIn, conv: ConversationsDep, request: Request) -> Any:
    """有帮助 / 没帮助 on one of the bot's answers in this session (tapping again changes it)."""
    check_session_rate(request, session_id)
    fb = give_feedback(conv.store, session_id, body.message_id, body.helpful)
    return {"message_id": fb.message_id, "helpful": fb.helpful}


@router.post("/{session_id}/rating", response_model=RatingOut)
def rating(session_id: SessionId, body: RatingIn, conv: ConversationsDep, request: Request) -> Any:
    """The shopper's rating (1-5) of the agent's service, once an agent has ended the conversation."""
    check_session_rate(request, session_id)
    r = rate(conv.store, session_id, body.score, body.comment or None)
    return {"handoff_id": r.handoff_id, "score": r.score, "comment": r.comment}


@router.get("/{session_id}/messages", response_model=MessagesOut)
def messages(session_id: SessionId, conv: ConversationsDep,
             after: Annotated[int, Query(ge=0, le=2**63 - 1, description="only messages with a larger id")] = 0) -> Any:
    """The conversation so far (or since message `after`), for reloads and polling."""
    return {"session_id": session_id, "messages": conv.history(session_id, after)}


class ShopperHandoff(BaseModel):
    """The chat's open handoff as its shopper sees it (the `handoff` events of the stream say the same)."""

    id: int
    status: str  # waiting | assigned
    position: int  # place in the queue while waiting (1: next), else 0
    agent: str | None  # who has the chat, by the name shoppers see


class ShopperHandoffOut(BaseModel):
    handoff: ShopperHandoff | None


@router.get("/{session_id}/handoff", response_model=ShopperHandoffOut)
def handoff(session_id: SessionId, conv: ConversationsDep) -> Any:
    """Whether a person has or will have the chat: the place in the queue, or who has it; null if nobody
    (after a reload, and for a widget that polls)."""
    return {"handoff": shopper_handoff(conv.store, session_id, conv.display_names)}


@router.get("/{session_id}/events")
async def events(session_id: SessionId, conv: ConversationsDep) -> EventSourceResponse:
    """Server-sent events: every new message in this session (agents' replies included), and `handoff`
    when the chat's handoff moves (its place in the queue, an agent who takes it)."""
    await asyncio.to_thread(conv.store.get_session, session_id)  # 404 for unknown sessions

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with conv.events.subscribe(f"session:{session_id}") as queue:
            yield {"event": "ready", "data": "{}"}
            while True:
                event = await queue.get()
                yield {"event": event["type"], "data": json.dumps(event, ensure_ascii=False)}

    return EventSourceResponse(stream(), ping=15)
