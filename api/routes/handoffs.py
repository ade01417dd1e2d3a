"""The agents' side: the queue, a handoff's transcript, claim, reply, resolve, events."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from sse_starlette.sse import EventSourceResponse

from api.deps import TICKET_SECONDS, AgentDep, ConversationsDep, StreamAgentDep, get_app_settings, issue_ticket
from api.schemas import AgentMessageIn, ErrorOut, HandoffOut, HandoffsOut, MessageOut, ResolveIn
from bot.dialogue.results import Reason
from bot.errors import KefuError
from bot.service.conversations import Conversations
from bot.service.queue import QueueFilter

# Ids are 64-bit database integers: a larger number is a 422, not a database overflow.
HandoffId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# The oldest age a filter asks about: ten years, in minutes (a larger one is a 422, not an overflow).
MAX_AGE_MINUTES = 10 * 366 * 24 * 60

router = APIRouter(prefix="/v1", tags=["agents"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}})


@router.get("/handoffs", response_model=HandoffsOut)
def queue(conv: ConversationsDep, agent: AgentDep,
          status: Annotated[str | None, Query(pattern="^(waiting|assigned|resolved)$",
                                              description="none: every open handoff (waiting and assigned)")] = None,
          limit: Annotated[int, Query(ge=1, le=200, description="resolved only: page size")] = 50,
          before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="resolved only: ids below this "
                                              "(the `next` of the page before)")] = None,
          q: Annotated[str | None, Query(min_length=1, max_length=100,
                                         description="text in the chat, the last message or the note")] = None,
          reason: Annotated[Reason | None, Query(description="why it was handed off")] = None,
          agent_name: Annotated[str | None, Query(alias="agent", min_length=1, max_length=64,
                                                  description="the agent who has (or had) it")] = None,
          older_than_minutes: Annotated[int | None, Query(ge=0, le=MAX_AGE_MINUTES,
                                                          description="handed off at least this long ago")] = None,
          ) -> Any:
    """Open handoffs, complete and oldest first (waiting ones with their place in the queue), or
    resolved ones, newest first, a page at a time (`next`: the `before` of the following page); each
    filter narrows either."""
    where = QueueFilter(reason=reason, agent=agent_name, text=q.strip() or None if q else None,
                        older_than=None if older_than_minutes is None else dt.timedelta(minutes=older_than_minutes))
    data = conv.queue(status, limit=limit, before=before, where=where)
    full_page = status == "resolved" and len(data) == limit
    return {"data": data, "count": len(data), "next": data[-1]["id"] if full_page else None}


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


@router.post("/agent/ticket")
def ticket(request: Request, agent: AgentDep) -> Any:
    """A ticket for one event stream: `GET /v1/agent/events?ticket=...` within a minute (a browser's
    EventSource cannot send the token in a header, and a URL is no place for it)."""
    return {"ticket": issue_ticket(agent, get_app_settings(request)), "expires_in": TICKET_SECONDS}


@router.get("/agent/events")
async def agent_events(conv: ConversationsDep, agent: StreamAgentDep) -> EventSourceResponse:
    """Server-sent events: new handoffs, shoppers' messages, claims and resolutions."""

    # While the stream is open the agent is at the console: heard from every third of the presence timeout.
    beat = conv.desk.rules.presence_timeout / 3 if conv.desk else None

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with conv.events.subscribe("agents") as queue:
            last = await _heard(conv, agent)
            yield {"event": "ready", "data": json.dumps({"agent": agent})}
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), beat)
                except TimeoutError:
                    event = None
                if beat is not None and time.monotonic() - last >= beat:
                    last = await _heard(conv, agent)
                if event is not None:
                    yield {"event": event["type"], "data": json.dumps(event, ensure_ascii=False)}

    return EventSourceResponse(stream(), ping=15)


async def _heard(conv: Conversations, agent: str) -> float:
    """The agent's console is there (bot.service.desk); when, on the monotonic clock."""
    if conv.desk is not None:
        try:
            await asyncio.to_thread(conv.desk.seen, agent)
        except KefuError:  # the database away for a moment: the next beat tries again
            pass
    return time.monotonic()
