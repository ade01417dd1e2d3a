"""kefu as the Agent Bot of a Chatwoot inbox: Chatwoot's webhook events in, replies through its API.

The shapes are Chatwoot's own (github.com/chatwoot/chatwoot):
- The agent bot's webhook (app/listeners/agent_bot_listener.rb, AgentBotJob, lib/webhooks/trigger.rb)
  POSTs `message.webhook_data` with `event` (app/models/message.rb): `id`, `content`, `message_type`
  ("incoming" from the contact), `content_type`, `content_attributes`, `private`, `account` {`id`}
  and `conversation` (Conversations::EventDataPresenter#push_data: `id`, the number its API takes,
  and `status`: "pending" while the bot has it, "open" once a person has). A non-2xx answer marks
  the message failed and opens the conversation (lib/webhooks/trigger.rb), so kefu answers at once
  and replies in the background.
- Newer Chatwoot signs its webhooks: `X-Chatwoot-Timestamp` and `X-Chatwoot-Signature`,
  "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body). Any version can put a token in the
  bot's outgoing URL (`?token=`): either authenticates.
- Replies: POST /api/v1/accounts/{account}/conversations/{conversation}/messages with the header
  `api_access_token` (app/controllers/concerns/access_token_auth_helper.rb: an agent bot may call
  messages#create and conversations#toggle_status) and {"content", "message_type": "outgoing",
  "private", "content_type", "content_attributes"} (app/builders/messages/message_builder.rb);
  an `input_select` message's items are {"title", "value"} only (app/models/concerns/
  content_attribute_validator.rb).
- Handing off: POST .../conversations/{conversation}/toggle_status {"status": "open"}
  (app/controllers/api/v1/accounts/conversations_controller.rb: a bot's pending -> open).
- A shopper's pick of an input_select option comes as `message_updated` of that outgoing message with
  content_attributes.submitted_values[0].value (lib/integrations/bot_processor_service.rb reads it so).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.dialogue.results import Reply
from bot.dialogue.voice import say
from bot.errors import ConflictError, InvalidInputError
from bot.integrations import notice
from bot.service.conversations import Conversations
from bot.service.webhook import Deliveries, Outgoing

log = logging.getLogger(__name__)
CHANNEL = "chatwoot"  # kefu's chat of a Chatwoot conversation: Conversations.channel_session
AGENT = "chatwoot"  # who has, in kefu's queue, a chat handed to Chatwoot's agents
MAX_SKEW = 300  # seconds a signed webhook's timestamp may be off
MAX_ID = 2**63 - 1
SEEN = 10_000  # events remembered, so that one delivered twice is answered once


@dataclass(frozen=True)
class Incoming:
    """A shopper's message (or pick of a quick reply) that the bot is to answer."""

    account: int
    conversation: int
    message: int
    text: str


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise InvalidInputError(f"{what} must be a positive integer")
    return value


def _choice(event: dict[str, Any]) -> str | None:
    """The value of the option a shopper picked in an input_select message, if that is the event."""
    if event.get("message_type") not in ("outgoing", 1) or event.get("content_type") != "input_select":
        return None
    attributes = event.get("content_attributes")
    values = attributes.get("submitted_values") if isinstance(attributes, dict) else None
    first = values[0] if isinstance(values, list) and values else None
    value = first.get("value") if isinstance(first, dict) else None
    return value if isinstance(value, str) else None


def parse(event: Any) -> Incoming | str:
    """The message to answer, or why the event is left alone. Malformed events: InvalidInputError."""
    if not isinstance(event, dict):
        raise InvalidInputError("the body must be a JSON object: a Chatwoot event")
    kind = event.get("event")
    if kind not in ("message_created", "message_updated"):
        return "not a message"
    conversation, account = event.get("conversation"), event.get("account")
    if not isinstance(conversation, dict) or not isinstance(account, dict):
        raise InvalidInputError("a message event has a conversation and an account")
    ids = (_id(account.get("id"), "account.id"), _id(conversation.get("id"), "conversation.id"),
           _id(event.get("id"), "id"))
    if conversation.get("status") != "pending":
        return "the conversation is not pending: a person has it"
    if event.get("private") is True:
        return "a private note"
    if kind == "message_created":
        text = event.get("content") if event.get("message_type") in ("incoming", 0) else None
    else:
        text = _choice(event)
    if not isinstance(text, str) or not text.strip():
        return "no message from the contact"
    return Incoming(*ids, text)


def authentic(secret: str, raw: bytes, headers: Mapping[str, str], token: str | None,
              now: float | None = None) -> bool:
    """Chatwoot's signature (newer versions) or the token in the bot's URL, under the shared secret."""
    key = secret.encode()
    if token is not None and hmac.compare_digest(token.encode("utf-8", "surrogateescape"), key):
        return True
    signature, stamp = headers.get("x-chatwoot-signature"), headers.get("x-chatwoot-timestamp")
    if not signature or not stamp or not stamp.isascii() or not stamp.isdigit():
        return False
    if abs(int(stamp) - (time.time() if now is None else now)) > MAX_SKEW:
        return False
    expected = "sha256=" + hmac.new(key, stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), expected.encode())


def message_body(text: str, suggestions: list[dict[str, str]]) -> dict[str, Any]:
    """An outgoing message; with quick replies, an input_select whose items' value is the title (the
    words the shopper picks, read as their next message)."""
    body: dict[str, Any] = {"content": text, "message_type": "outgoing", "private": False}
    if suggestions:
        items = [{"title": s["title"], "value": s["title"]} for s in suggestions]
        body |= {"content_type": "input_select", "content_attributes": {"items": items}}
    return body


def _without_presence(conv: Conversations, reply: Reply) -> str:
    """The reply without its last line when that says none of kefu's agents is online, which means
    nothing in Chatwoot (its agents are not in kefu's presence)."""
    text, offline = str(reply.reply), say(conv.bot.kb.shop, "offline")
    if reply.action == "handoff" and text.endswith("\n" + offline):
        return text[: -len(offline) - 1]
    return text


class ChatwootBot:
    """Answers a Chatwoot conversation's pending messages; hands it to Chatwoot's agents when kefu would."""

    def __init__(self, base_url: str, bot_token: str, secret: str, deliveries: Deliveries) -> None:
        self.base_url, self._token, self.secret = base_url.rstrip("/"), bot_token, secret
        self.deliveries = deliveries
        self._seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self._lock = threading.Lock()

    def handle(self, conv: Conversations, event: Any) -> dict[str, Any]:
        """One webhook event: the reply goes to Chatwoot in the background; what kefu did with it."""
        incoming = parse(event)
        if isinstance(incoming, str):
            return {"status": "ignored", "reason": incoming}
        if self._again(incoming):
            return {"status": "ignored", "reason": "already answered"}
        session_id = conv.channel_session(CHANNEL, f"{incoming.account}/{incoming.conversation}")
        self._take_back(conv, session_id)
        reply, _ = conv.channel_chat(session_id, incoming.text)
        self._answer(conv, incoming, reply)
        return {"status": "answered", "action": reply.action}

    def _again(self, incoming: Incoming) -> bool:
        key = (incoming.account, incoming.conversation, incoming.message, incoming.text)
        with self._lock:
            if key in self._seen:
                return True
            self._seen[key] = None
            while len(self._seen) > SEEN:
                self._seen.popitem(last=False)
        return False

    def _take_back(self, conv: Conversations, session_id: str) -> None:
        """A pending conversation is the bot's again (Chatwoot gave it back): the handoff kefu made
        for it is over."""
        h = conv.store.open_handoff(session_id)
        if h is None:
            return
        try:
            conv.resolve(h.id, AGENT, None, "back to the bot in Chatwoot")
        except ConflictError:  # an agent took it in kefu's own console: theirs to end
            log.warning("handoff %s is pending in Chatwoot but an agent has it in kefu", h.id)

    def _answer(self, conv: Conversations, incoming: Incoming, reply: Reply) -> None:
        if reply.reply:
            self._post(incoming, "messages", message_body(_without_presence(conv, reply), reply.suggestions))
        if reply.action != "handoff" or reply.reply is None or not reply.handoff:
            return
        try:  # Chatwoot's agents have it: kefu's own console shows it as theirs
            conv.claim(int(reply.handoff["id"]), AGENT)
        except ConflictError:
            pass
        titles = {intent: e.title for intent, e in conv.bot.kb.entries.items()}
        guesses = [p.as_dict() for p in reply.ranking[:3]]
        note = notice.packet(reply.reason, incoming.text, guesses, titles)
        self._post(incoming, "messages", {"content": note, "message_type": "outgoing", "private": True})
        self._post(incoming, "toggle_status", {"status": "open"})

    def _post(self, incoming: Incoming, action: str, payload: dict[str, Any]) -> None:
        url = (f"{self.base_url}/api/v1/accounts/{incoming.account}/conversations/"
               f"{incoming.conversation}/{action}")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"content-type": "application/json; charset=utf-8", "api_access_token": self._token}
        self.deliveries.send(Outgoing(f"chatwoot {action}", lambda: (url, body, headers)))
