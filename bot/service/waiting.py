"""The shopper's side of a handoff: their place in the queue, who has their chat, kept live; and the
short acknowledgement of what they write while they wait for a person.

The acknowledgement comes once per burst. While nobody has claimed the chat, a message the bot does not
answer is acknowledged (`replies.waiting_ack`) when the chat's last message is someone else's (the bot's
notice or an answer, an agent, the system), or when the shopper had been quiet for BURST_GAP; the
messages that follow it in a burst are not: ten lines typed in a row get one 已收到. Once an agent has
the chat nothing is acknowledged (the agent reads it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from bot.service.events import EventBus
from bot.service.schema import Handoff, Message, as_utc
from bot.service.store import Store

BURST_GAP = dt.timedelta(minutes=2)  # a shopper quiet this long starts a new burst
ACK = "ack"  # the acknowledgement's action (a bot message, in `extra` and the `action` column)
RECENT = 20  # the newest messages read to find the burst's start


def is_ack(m: Message) -> bool:
    return m.role == "bot" and (m.extra or {}).get("action") == ACK


def needs_ack(recent: Sequence[Message], now: dt.datetime) -> bool:
    """Whether a new message, after the chat's `recent` messages (oldest first), starts a burst."""
    if not recent or now - as_utc(recent[-1].created_at) >= BURST_GAP:
        return True
    for m in reversed(recent):
        if m.role != "shopper":
            return not is_ack(m)
    return True


def shopper_view(h: Handoff, position: int, names: dict[str, str]) -> dict[str, Any]:
    """A handoff as its shopper sees it: its status, their place while it waits, and the agent who has
    it by the name shoppers see (never the login name when the shop gave a display name)."""
    return {"id": h.id, "status": h.status, "position": position if h.status == "waiting" else 0,
            "agent": names.get(h.agent, h.agent) if h.agent and h.status == "assigned" else None}


def shopper_handoff(store: Store, session_id: str, names: dict[str, str]) -> dict[str, Any] | None:
    """The session's open handoff as its shopper sees it, or None (after a reload, and for polling)."""
    store.get_session(session_id)  # 404 for an unknown session
    h = store.open_handoff(session_id)
    return None if h is None else shopper_view(h, store.queue_position(h.id), names)


def tell_shoppers(store: Store, events: EventBus, h: Handoff, names: dict[str, str]) -> None:
    """After `h` was claimed, transferred or resolved: its shopper hears who has the chat now (the
    `handoff` event of their stream), and every shopper waiting behind it their new place."""
    events.publish(f"session:{h.session_id}", {"type": "handoff", "handoff": shopper_view(h, 0, names)})
    for row in store.open_handoffs("waiting"):
        if row.handoff.id > h.id:
            view = shopper_view(row.handoff, row.position or 0, names)
            events.publish(f"session:{row.handoff.session_id}", {"type": "handoff", "handoff": view})
