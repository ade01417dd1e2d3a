"""The agents' presence at the desk: online, busy or away (bot/service/desk.py), and the desk's sweep."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AgentDep, ConversationsDep
from api.schemas import ErrorOut
from bot.errors import KefuError
from bot.service.conversations import Conversations
from bot.service.desk import Desk, Presence

log = logging.getLogger(__name__)
# How often each process looks for chats to give out and quiet agents' chats to take back.
SWEEP_SECONDS = 2.0


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    """An agent sets their status at the desk."""

    status: Literal["online", "busy", "away"]


class PresenceOut(BaseModel):
    agent: str
    status: str = Field(..., description="online | busy | away, as it counts now")
    chosen: str = Field(..., description="the status the agent set (away counts instead when not heard from)")
    chats: int = Field(..., description="open chats assigned to them")
    assignment: str = Field(..., description="the shop's assignment: manual | auto")
    max_chats: int = Field(..., description="open chats an agent holds before automatic assignment passes them by")
    timeout: float = Field(..., description="seconds the console may go unheard before it counts as away")


router = APIRouter(prefix="/v1/agent", tags=["agents"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}})


def desk_of(conv: Conversations) -> Desk:
    assert conv.desk is not None, "the API always builds the desk (api/main.py)"
    return conv.desk


def _out(desk: Desk, p: Presence) -> dict[str, Any]:
    rules = desk.rules
    return {"agent": p.agent, "status": p.status, "chosen": p.chosen, "chats": p.chats,
            "assignment": rules.assignment, "max_chats": rules.max_chats, "timeout": rules.presence_timeout}


@router.get("/presence", response_model=PresenceOut)
def presence(conv: ConversationsDep, agent: AgentDep) -> Any:
    """The caller's status: as chosen, and as it counts (away when the console has not been heard from)."""
    desk = desk_of(conv)
    return _out(desk, desk.of(agent))


@router.put("/presence", response_model=PresenceOut)
def set_presence(body: PresenceIn, conv: ConversationsDep, agent: AgentDep) -> Any:
    """Set the caller's status: `online` (takes chats, and is given them under automatic assignment),
    `busy` (at the desk, given no new chats), `away`."""
    desk = desk_of(conv)
    p = desk.set_status(agent, body.status)
    conv.events.publish("agents", {"type": "presence", "agent": agent, "status": p.status})
    conv.dispatch()  # an agent online: waiting chats may go to them
    return _out(desk, desk.of(agent))


@router.post("/heartbeat", response_model=PresenceOut)
def heartbeat(conv: ConversationsDep, agent: AgentDep) -> Any:
    """The console is still there (the event stream says so too): the chosen status counts again. An
    agent working through the API alone calls this within KEFU_PRESENCE_TIMEOUT seconds."""
    desk = desk_of(conv)
    p = desk.seen(agent)
    conv.dispatch()
    return _out(desk, p)


@router.delete("/presence", response_model=PresenceOut)
def leave(conv: ConversationsDep, agent: AgentDep) -> Any:
    """The console is closing: the caller counts as away at once (the chosen status is kept for their return)."""
    desk = desk_of(conv)
    p = desk.left(agent)
    conv.events.publish("agents", {"type": "presence", "agent": agent, "status": p.status})
    return _out(desk, p)


def _sweep_once(conv: Conversations) -> None:
    try:
        conv.dispatch()
    except KefuError as exc:  # the database away for a moment: the next sweep tries again
        log.warning("desk sweep skipped: %s", exc)


async def sweep(conv: Conversations) -> None:
    """Forever: quiet agents' chats back to the queue, waiting chats to free agents (every process of the
    shop sweeps; the store takes them one at a time)."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        await asyncio.to_thread(_sweep_once, conv)
