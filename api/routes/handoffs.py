"""The agents' side: the queue, a handoff's transcript, claim, reply, resolve, events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sse_starlette.sse import EventSourceResponse

from api.deps import AgentDep, ConversationsDep
from api.schemas import AgentMessageIn, ErrorOut, HandoffOut, HandoffsOut, MessageOut, ResolveIn

# Ids are 64-bit database integers: a larger number is a 422, not a database overflow.
HandoffId = Annotated[int, Path(ge=1, le=2**63 - 1)]

router = APIRouter(prefix="/v1", tags=["agents"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}})


@router.get("/handoffs", response_model=HandoffsOut)
def queue(conv: ConversationsDep, agent: AgentDep,
          status: Annotated[str | None, Query(pattern="^(waiting|assigned|resolved|returned)$")] = None) -> Any:
    """Handoffs, oldest first, optionally of one status."""
    data = conv.queue(status)
    return {"data": data, "count": len(data)}


@router.get("/handoffs/{handoff_id}", response_model=HandoffOut)
def detail(handoff_id: HandoffId, conv: ConversationsDep, agent: AgentDep) -> Any:
    """One handoff with the whole transcript and the bot's guesses."""
    return conv.detail(handoff_id)


@router.post("/handoffs/{handoff_id}/claim", response_model=HandoffOut)
def claim(handoff_id: HandoffId, conv: ConversationsDep, agent: AgentDep) -> Any:
    """Take a waiting handoff; 409 if someone already has it."""
    return conv.claim(handoff_id, agent)


@router.post("/handoffs/{handoff_id}/messages", response_model=MessageOut)
def reply(handoff_id: HandoffId, body: AgentMessageIn, conv: ConversationsDep, agent: AgentDep) -> Any:
    """Write to the shopper; it reaches the chat at once."""
    return conv.agent_message(handoff_id, agent, body.text)


@router.post("/handoffs/{handoff_id}/resolve", response_model=HandoffOut)
def resolve(handoff_id: HandoffId, conv: ConversationsDep, agent: AgentDep, body: ResolveIn | None = None) -> Any:
    """Close the handoff (optionally labelled with the catalogue id it really was); the bot answers again."""
    body = body or ResolveIn()
    return conv.resolve(handoff_id, agent, body.label, body.note)


@router.get("/agent/events")
async def agent_events(conv: ConversationsDep, agent: AgentDep) -> EventSourceResponse:
    """Server-sent events: new handoffs, shoppers' messages, claims and resolutions."""

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with conv.events.subscribe("agents") as queue:
            yield {"event": "ready", "data": json.dumps({"agent": agent})}
            while True:
                event = await queue.get()
                yield {"event": event["type"], "data": json.dumps(event, ensure_ascii=False)}

    return EventSourceResponse(stream(), ping=15)
