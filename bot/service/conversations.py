"""Conversations: the bot, the store and the event bus together, for shoppers and agents.

Pure Python (no web framework): api/ translates HTTP to these calls and back.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from bot.dialogue.engine import Bot, check_message
from bot.dialogue.policy import CLOSING, SessionState
from bot.dialogue.results import REASON_INTENT, Reason, Reply
from bot.dialogue.voice import say
from bot.errors import AlreadyHandedOffError, ConflictError, InvalidInputError, SessionNotFoundError
from bot.language.pii import mask
from bot.service.desk import Desk
from bot.service.events import EventBus
from bot.service.queue import QueueFilter, open_counts
from bot.service.schema import AGENTS_ONLY, ChatSession, Handoff, Message, handoff_dict, message_dict
from bot.service.store import Store
from bot.service.waiting import ACK, RECENT, needs_ack, tell_shoppers

log = logging.getLogger(__name__)
# A handoff's transcript: the newest messages of the chat (the one that was handed off among them).
TRANSCRIPT_LIMIT = 500
# The one entry the bot leaves to the person even while the shopper waits: a greeting in the queue.
WAITING_CALL = "smalltalk.greeting"
# While the shopper waits, an FAQ question the bot is unsure of gets its likely entries as quick replies
# (the person still comes) when the best of them, not small talk, reaches this: 改不了的话我就取消重拍
# does (0.6 on the default model), lines meant for the person (订单号发你了, 还要等多久, 就是昨天买的那个:
# 0.2-0.47) do not.
WAITING_SUGGEST = 0.5
class Conversations:
    """The service behind both the chat widget and the agent console."""

    def __init__(self, bot: Callable[[], Bot], store: Store, events: EventBus | None = None,
                 now: Callable[[], dt.datetime] | None = None,
                 notify: Callable[[dict[str, Any]], None] | None = None,
                 display_names: dict[str, str] | None = None, desk: Desk | None = None) -> None:
        self._bot = bot
        self.desk = desk  # presence, assignment, reception (None: by hand, the bot first, nobody's presence known)
        self.display_names = display_names or {}  # agent -> the name shoppers see (else the agent's own)
        self.store = store
        self.events = events or EventBus()
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        self._notify = notify

    @property
    def bot(self) -> Bot:
        return self._bot()

    # -- shopper side ----------------------------------------------------------------------
    # Told of every turn: its reply, and the seconds the bot took to read the message (api/metrics.py).
    observe: Callable[[Reply, float], None] | None = None

    def chat(self, session_id: str | None, text: str, *, new_id: str | None = None) -> Reply:
        """Store the shopper's message, then answer it or pass it to the person who has it (a new chat,
        `session_id` None, is stored under `new_id`, or a fresh token)."""
        check_message(text)
        chat, last_text = self.store.session_context(session_id, new_id)
        # The reply is computed before anything is written: a turn is one transaction.
        started = time.perf_counter()
        out, after = self.bot.turn(text, SessionState(fallbacks=chat.fallbacks, last_intent=chat.last_intent,
                                                       last_text=last_text))
        reading = time.perf_counter() - started
        if chat.mode != "human" and out.route != "human" and self.desk and self.desk.to_person(last_text is None):
            out = replace(out, route="human", action="handoff", reason=Reason.RECEPTION.value, suggestions=[],
                          reply=self.bot.kb.answer(REASON_INTENT[Reason.RECEPTION]))  # the shop's reception mode
        reply = self._store_turn(chat, text, out, after, new=session_id is None)
        if self.observe is not None:
            self.observe(reply, reading)
        return reply

    def _store_turn(self, chat: ChatSession, text: str, out: Reply, after: SessionState, new: bool) -> Reply:
        """The turn stored (with the session itself when `new`): passed to the person who has the chat,
        handed off, or answered."""
        if chat.mode == "human":
            to_agent = self._to_agent(chat.id, text, out, after)
            if to_agent is not None:
                return to_agent
        if out.route == "human":
            try:
                return self._hand_off(chat.id, text, out, new)
            except AlreadyHandedOffError:  # a message of the same session handed off meanwhile
                to_agent = self._to_agent(chat.id, text, out, after)
                if to_agent is not None:
                    return to_agent
                return self._hand_off(chat.id, text, out, new)  # ...and it was resolved at once
        state = {"fallbacks": after.fallbacks, "last_intent": after.last_intent}
        fields = {"intent": out.intent, "confidence": out.confidence,
                  "extra": {"action": out.action, "suggestions": out.suggestions,
                            **({"reason": out.reason} if out.reason else {})}}
        _, bot_msg = self.store.record_turn(chat.id, text, str(out.reply), state=state, new_session=new, **fields)
        self.events.publish(f"session:{chat.id}", {"type": "message", "message": message_dict(bot_msg)})
        return replace(out, session_id=chat.id, message_id=bot_msg.id)

    # -- channels that name their own users (Rasa's REST channel: its `sender`) ------------------
    # Such a chat's id is the channel's name and a hash of its user id, with a ':' that the session ids
    # of kefu's own routes never have (api.schemas.SESSION_ID): no route that takes a session id
    # (history, events, feedback) ever reaches it, so the user id a channel chose (a Chatwoot
    # contact's number, say) continues its chat through that channel only, and reads nothing else.
    CHANNEL_RECENT = 50  # the newest messages read for what people said since the user's last message

    @staticmethod
    def channel_session(channel: str, user: str) -> str:
        digest = hashlib.sha256(f"{channel}\0{user}".encode("utf-8", "surrogatepass")).digest()
        return f"{channel}:{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"

    def channel_chat(self, session_id: str, text: str) -> tuple[Reply, list[Message]]:
        """A turn of a channel's chat (`channel_session`): continued, or started under that id. With it,
        what agents (and kefu itself) said in the chat since the user's previous message, in order: a
        channel that only answers requests learns them with its next answer."""
        try:
            reply = self.chat(session_id, text)
        except SessionNotFoundError:
            try:
                reply = self.chat(None, text, new_id=session_id)
            except ConflictError:  # the user's first two messages at once: the other one stored the chat
                reply = self.chat(session_id, text)
        recent = self.store.messages(session_id, limit=self.CHANNEL_RECENT, newest=True)
        turns = [i for i, m in enumerate(recent) if m.role == "shopper"] or [0]
        since = recent[turns[-2] + 1 if len(turns) > 1 else 0:turns[-1]]
        return reply, [m for m in since if m.role in ("agent", "system")]

    def _to_agent(self, session_id: str, text: str, out: Reply, after: SessionState) -> Reply | None:
        """The message of a chat handed to a person: stored and passed to agents; None if nobody has it.
        While the shopper waits for a person (nobody claimed the chat yet), a question the bot answers
        with confidence is answered at once, one it is unsure of but likely knows gets quick replies
        (WAITING_SUGGEST), and the agent sees both; anything else waits for the person, greetings too
        (在吗 in the queue calls the person)."""
        answer: tuple[str, dict[str, Any], dict[str, Any]] | None = None
        if out.action == "answer" and out.intent != WAITING_CALL:
            if out.intents == [CLOSING]:  # 好 等你们消息, 谢谢: not goodbye, the person is still coming
                out = replace(out, reply=say(self.bot.kb.shop, "waiting_closing"))
            answer = (str(out.reply), {"last_intent": after.last_intent},
                      {"intent": out.intent, "confidence": out.confidence, "extra": {"action": "answer"}})
        elif out.action == "suggest" and out.confidence >= WAITING_SUGGEST \
                and not str(out.intent).startswith("smalltalk."):
            answer = (str(out.reply), {"last_intent": after.last_intent},
                      {"intent": out.intent, "confidence": out.confidence,
                       "extra": {"action": "suggest", "suggestions": out.suggestions}})
        elif needs_ack(self.store.messages(session_id, limit=RECENT, newest=True), self._now()):
            # stored only while nobody has claimed the chat (bot.service.waiting: once per burst)
            answer = (say(self.bot.kb.shop, "waiting_ack"), {}, {"extra": {"action": ACK}})
            out = replace(out, route="human", action=ACK, confidence=0.0, suggestions=[])
        stored = self.store.message_to_agent(session_id, text, answer)
        if stored is None:
            return None
        msg, h, bot_msg = stored
        handoff = {"id": h.id, "status": h.status, "position": self.store.queue_position(h.id)}
        self.events.publish("agents", {"type": "message", "handoff_id": h.id, "message": message_dict(msg)})
        if bot_msg is None:
            return Reply("human", "handoff", h.intent, 0.0, None, h.reason, session_id=session_id, message_id=msg.id,
                         handoff=handoff)
        if out.action == ACK:
            out = replace(out, intent=h.intent, reason=h.reason, reply=bot_msg.text)
        self.events.publish("agents", {"type": "message", "handoff_id": h.id, "message": message_dict(bot_msg)})
        self.events.publish(f"session:{session_id}", {"type": "message", "message": message_dict(bot_msg)})
        return replace(out, session_id=session_id, message_id=bot_msg.id, handoff=handoff)

    def _hand_off(self, session_id: str, text: str, out: Reply, new: bool) -> Reply:
        guesses = [p.as_dict() for p in out.ranking[:3]]
        closed = self._closed_text()
        if self.desk is not None:  # honest about who is there: people at the desk, whatever the hours say;
            present = self.desk.anyone("online", "busy")  # nobody: not "someone is coming"
            closed = None if present else closed or say(self.bot.kb.shop, "offline")
        # The entry's answer says a person is coming; the place in the queue is the widget's banner.
        reply = "\n".join(filter(None, (out.reply, closed)))
        _, h, bot_msg, position = self.store.hand_off(
            session_id, text, new_session=new, reason=out.reason or "requested", intent=out.intent, guesses=guesses,
            bot_text=reply, bot_fields={"intent": out.intent, "confidence": out.confidence,
                                        "extra": {"action": "handoff", "reason": out.reason}})
        log.info("handoff %s: reason=%s intent=%s", h.id, h.reason, h.intent)
        public = handoff_dict(h, position, h.created_at)  # the shopper waits for a person from now
        self.events.publish("agents", {"type": "handoff", "handoff": public})
        if self._notify is not None:
            self._notify({"type": "handoff.created", "handoff": public})
        self.events.publish(f"session:{session_id}", {"type": "message", "message": message_dict(bot_msg)})
        given = {g.id: g for g in self.dispatch()}  # the desk may give it out at once: the reply says so
        h, position = (given[h.id], 0) if h.id in given else (h, position)
        return replace(out, reply=bot_msg.text, session_id=session_id, message_id=bot_msg.id,
                       handoff={"id": h.id, "status": h.status, "position": position})

    def _closed_text(self) -> str | None:
        shop = self.bot.kb.shop
        hours = shop.get("service_hours") or {}
        if not hours.get("open") or not hours.get("close"):
            return None
        local = self._now().astimezone(ZoneInfo(shop.get("timezone", "Asia/Shanghai")))
        hhmm = local.strftime("%H:%M")
        if str(hours["open"]) <= hhmm < str(hours["close"]):
            return None
        return say(shop, "closed", days=hours.get("days", ""), open=hours["open"], close=hours["close"])

    def history(self, session_id: str, after: int = 0) -> list[dict[str, Any]]:
        """The chat as the shopper sees it: agents by their display names, agents' notes left out."""
        self.store.get_session(session_id)
        return [self.for_shopper(m) for m in self.store.messages(session_id, after) if m.role not in AGENTS_ONLY]

    def for_shopper(self, m: Message) -> dict[str, Any]:
        """A message as the shopper sees it: the agent by the display name, never the login name."""
        out = message_dict(m)
        if m.author is not None:
            out["author"] = self.display_names.get(m.author, m.author)
        return out

    # -- agent side ------------------------------------------------------------------------
    def queue_counts(self) -> dict[str, int]:
        """How many handoffs are open, by status (waiting, assigned)."""
        with self.store.tx() as s:
            return open_counts(s)

    def queue(self, status: str | None = None, *, limit: int = 50, before: int | None = None,
              where: QueueFilter | None = None) -> list[dict[str, Any]]:
        """Open handoffs (all waiting and assigned ones that `where` keeps, oldest first, whatever the
        history), or resolved ones, newest first, a page of `limit` before the id `before`."""
        if status in (None, "waiting", "assigned"):
            return [handoff_dict(*row) for row in self.store.open_handoffs(status, where)]
        if status == "resolved":
            return [handoff_dict(h) for h in self.store.closed_handoffs(limit, before, where)]
        raise InvalidInputError("status must be waiting, assigned or resolved")

    def detail(self, handoff_id: int) -> dict[str, Any]:
        h = self.store.get_handoff(handoff_id)
        since = self.store.reply_wait(h.id) if h.status != "resolved" else None
        out = handoff_dict(h, self.store.queue_position(h.id), since)
        recent = self.store.messages(h.session_id, limit=TRANSCRIPT_LIMIT, newest=True)
        out["transcript"] = [message_dict(m) for m in recent]
        return out

    def claim(self, handoff_id: int, agent: str) -> dict[str, Any]:
        h = self.store.claim(handoff_id, agent)
        self.events.publish("agents", {"type": "claimed", "handoff": handoff_dict(h)})
        self.tell_shoppers(h)
        return handoff_dict(h)

    def tell_shoppers(self, h: Handoff) -> None:
        """The shopper of `h` hears who has the chat, those waiting behind it their place (bot.service.waiting)."""
        tell_shoppers(self.store, self.events, h, self.display_names)

    def agent_message(self, handoff_id: int, agent: str, text: str) -> dict[str, Any]:
        text = check_message(text)
        h, msg, claimed = self.store.agent_reply(handoff_id, agent, text)
        if claimed:
            self.events.publish("agents", {"type": "claimed", "handoff": handoff_dict(h)})
            self.tell_shoppers(h)
        self.events.publish(f"session:{h.session_id}", {"type": "message", "message": self.for_shopper(msg)})
        return message_dict(msg)

    def resolve(self, handoff_id: int, agent: str, label: str | None, note: str | None) -> dict[str, Any]:
        if label is not None and label not in self.bot.kb.entries:
            raise InvalidInputError(f"label '{label}' is not a catalogue id")
        h, msg = self.store.resolve(handoff_id, agent, label, note, system_text=say(self.bot.kb.shop, "back"))
        if msg is not None:
            self.events.publish(f"session:{h.session_id}", {"type": "message", "message": message_dict(msg)})
        self.events.publish("agents", {"type": "resolved", "handoff": handoff_dict(h)})
        self.tell_shoppers(h)
        self.dispatch()  # a slot freed
        return handoff_dict(h)

    def dispatch(self) -> list[Handoff]:
        """The desk's work, told to agents and shoppers: quiet agents' chats back in the queue, waiting ones
        given out (those, returned)."""
        if self.desk is None:
            return []
        for h, agent, note in self.desk.requeue_quiet():
            self.events.publish("agents", {"type": "requeued", "handoff": handoff_dict(h), "from": agent,
                                           "message": message_dict(note)})
            self.tell_shoppers(h)  # waiting again, at its place
        given = self.desk.assign()
        for h in given:
            self.events.publish("agents", {"type": "assigned", "handoff": handoff_dict(h), "to": h.agent})
            self.tell_shoppers(h)  # the shopper hears who has the chat
        return given


def export_labels(store: Store) -> list[dict[str, Any]]:
    """Agents' labels as training data, personal data masked."""
    return [{"text": mask(text), "faq": [label]} for text, label, _ in store.labelled()]
