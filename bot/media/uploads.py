"""A picture in the chat: checked (bot.media.images), stored with the shopper's message that shows it, and
read back by its shopper (their session) or by an agent.

A picture goes to a person: it is taken while the chat has an open handoff (waiting or with an agent),
as the bot asks for pictures of a damaged item only when it hands the chat over. The message's text is
the shop's `replies.image_message` ([图片]: the agents' queue and searches show it); `extra.image` says
which picture.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.dialogue.voice import say
from bot.errors import ImageRefusedError, NotFoundError
from bot.media.images import check
from bot.service.conversations import Conversations
from bot.service.schema import OPEN_STATUSES, Handoff, Picture, insert_message, message_dict, utcnow
from bot.service.waiting import ACK, RECENT, needs_ack


def send_picture(conv: Conversations, session_id: str, data: bytes, max_bytes: int) -> dict[str, Any]:
    """Check and store the picture, then pass it to the person as the shopper's message (with the
    acknowledgement of a burst while nobody has the chat, as for text); the message as the shopper sees it
    (their own stream does not repeat it, as for text)."""
    picture = check(data, max_bytes)
    shop = conv.bot.kb.shop
    conv.store.get_session(session_id)  # 404 for an unknown session
    ack = needs_ack(conv.store.messages(session_id, limit=RECENT, newest=True), utcnow())
    with conv.store.tx(write=True) as s:
        h = s.scalars(select(Handoff).where(Handoff.session_id == session_id, Handoff.status.in_(OPEN_STATUSES))
                      .with_for_update()).first()
        if h is None:
            raise ImageRefusedError("no_person", "pictures go to a person: this chat has no open handoff")
        now = utcnow()
        row = Picture(session_id=session_id, content_type=picture.content_type, width=picture.width,
                      height=picture.height, data=picture.data, created_at=now)
        s.add(row)
        s.flush()
        image = {"id": row.id, "type": picture.content_type, "width": picture.width, "height": picture.height}
        text = say(shop, "image_message")
        msg = insert_message(s, session_id, "shopper", text, now, extra={"image": image})
        h.last_message = text  # the queue shows what the shopper sent last
        reply = None
        if ack and h.status == "waiting":
            reply = insert_message(s, session_id, "bot", say(shop, "waiting_ack"), now, extra={"action": ACK})
    conv.events.publish("agents", {"type": "message", "handoff_id": h.id, "message": message_dict(msg)})
    if reply is not None:
        conv.events.publish("agents", {"type": "message", "handoff_id": h.id, "message": message_dict(reply)})
        conv.events.publish(f"session:{session_id}", {"type": "message", "message": message_dict(reply)})
    return message_dict(msg)


def picture_of(conv: Conversations, picture_id: int, session_id: str | None = None) -> Picture:
    """The stored picture; with `session_id`, only that session's (another's is 404, as if it did not exist)."""
    with conv.store.tx() as s:
        row = s.get(Picture, picture_id)
    if row is None or (session_id is not None and row.session_id != session_id):
        raise NotFoundError(f"picture {picture_id} not found")
    return row
