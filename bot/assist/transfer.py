"""Transfers: an agent hands a chat to a colleague, with a note only agents see.

The chat goes to the colleague as it is (assigned to them; a waiting one leaves the queue), and the
note is a message of the chat with the role `transfer` (who, to whom, the note): in the agents'
transcript and their event stream, never in the shopper's history (bot.service.conversations).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, func, or_, update

from bot.errors import ConflictError, InvalidInputError, NotFoundError
from bot.service.conversations import Conversations
from bot.service.schema import TRANSFER, Handoff, handoff_dict, insert_message, message_dict, utcnow


def transfer(conv: Conversations, handoff_id: int, agent: str, to: str, note: str,
             agents: Collection[str]) -> dict[str, Any]:
    """Give the handoff to `to` (one of `agents`), from `agent`, who has it (or it waits for anyone);
    one transaction. 422 for an unknown colleague or oneself, 409 when it is someone else's or closed."""
    if to not in agents:
        raise InvalidInputError(f"'{to}' is not an agent of this shop")
    if to == agent:
        raise InvalidInputError("the chat is already yours; choose a colleague")
    with conv.store.tx(write=True) as s:
        now = utcnow()
        # A conditional UPDATE: of two agents acting on the chat at once, one wins (SQLite ignores FOR UPDATE).
        done = s.execute(update(Handoff)
                         .where(Handoff.id == handoff_id,
                                or_(Handoff.status == "waiting",
                                    and_(Handoff.status == "assigned", Handoff.agent == agent)))
                         # when a chat was first taken stays: the shopper's wait for a person ended then
                         .values(status="assigned", agent=to, taken_at=now,
                                 assigned_at=func.coalesce(Handoff.assigned_at, now))
                         .execution_options(synchronize_session=False))
        h = s.get(Handoff, handoff_id, populate_existing=True)
        if h is None:
            raise NotFoundError(f"handoff {handoff_id} not found")
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise ConflictError(f"handoff {handoff_id} is {h.status}" + (f" by {h.agent}" if h.agent else ""))
        msg = insert_message(s, h.session_id, TRANSFER, note, now, author=agent, extra={"to": to})
    event = {"type": "transferred", "handoff": handoff_dict(h), "from": agent, "to": to, "note": note,
             "message": message_dict(msg)}
    conv.events.publish("agents", event)
    conv.tell_shoppers(h)  # the shopper's banner names whoever has the chat now; the note stays the agents'
    conv.dispatch()  # the giver's slot is free
    return event

