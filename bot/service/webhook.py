"""Outbound HTTP to other systems, never blocking chat; and the signed webhook on a new handoff.

`Deliveries` is the one way kefu posts to other systems (this webhook, the agents' chat robots and
Chatwoot in bot/integrations): a bounded queue to one background thread, which retries 5xx, 408, 429
and network errors with exponential backoff; the chat request only enqueues. One thread keeps the
order of what it was given (a reply before the note that follows it).

What leaves the shop in the webhook is the least an agent needs: the handoff's id and a link to it in
the agent console, its reason and the bot's guesses. Never the session id (the shopper's only
credential), and the shopper's words with personal data masked unless the shop opts in
(`personal_data`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.language.pii import mask

if TYPE_CHECKING:  # imported where it posts: httpx brings its command line (rich, click), 0.3 s of start-up
    import httpx

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Kefu-Signature"


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>` of the body under the shared secret (as GitHub webhooks do)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def handoff_link(agent_url: str, handoff_id: int) -> str | None:
    """The handoff opened in the agent console (its `#handoff-<id>`), or None without the console's address."""
    return f"{agent_url}#handoff-{handoff_id}" if agent_url else None


def http_verdict(r: httpx.Response) -> bool | None:
    """True delivered (2xx), None worth another try (408, 429, 5xx), False refused (any other)."""
    if r.status_code in (408, 429) or r.status_code >= 500:
        return None
    return r.status_code < 400


@dataclass(frozen=True)
class Outgoing:
    """One POST to deliver. `build` gives (url, body, headers) again for every attempt, since some
    peers sign the time of sending; `verdict` reads the answer (some say no in a 200's body)."""

    name: str  # what the logs call it: never the URL, which may hold a key
    build: Callable[[], tuple[str, bytes, dict[str, str]]]
    verdict: Callable[[httpx.Response], bool | None] = http_verdict


class Deliveries:
    """A background thread posting what it is given, in order, each retried with backoff."""

    def __init__(self, *, name: str = "kefu-deliveries", retries: int = 5, backoff: float = 0.5,
                 timeout: float = 5.0, queue_size: int = 10_000) -> None:
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._queue: queue.Queue[Outgoing | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def send(self, out: Outgoing) -> None:
        """Enqueue; drops it (logged) rather than block when the queue is full."""
        try:
            self._queue.put_nowait(out)
        except queue.Full:
            log.warning("%s: delivery queue full; dropped", out.name)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within `timeout`), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout) as client:
            while (out := self._queue.get()) is not None:
                try:
                    self.deliver(client, out)
                except Exception:  # a bad build must not stop every later delivery
                    log.exception("%s: delivery failed", out.name)

    def deliver(self, client: httpx.Client, out: Outgoing) -> bool:
        """Post `out` until it is delivered or refused, or the retries run out; whether it was delivered."""
        import httpx

        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            url, body, headers = out.build()
            try:
                verdict = out.verdict(client.post(url, content=body, headers=headers))
            except httpx.HTTPError as exc:  # its text may quote the URL, and the URL may hold a key
                log.warning("%s attempt %d failed: %s", out.name, attempt + 1, type(exc).__name__)
                continue
            if verdict is not None:
                if not verdict:
                    log.warning("%s refused; not retried", out.name)
                return verdict
            log.warning("%s attempt %d failed", out.name, attempt + 1)
        log.error("%s gave up after %d attempts", out.name, self.retries + 1)
        return False


class WebhookNotifier:
    """Posts handoff events to one URL, signed, through `deliveries` (its own unless given)."""

    def __init__(self, url: str, secret: str, *, agent_url: str = "", personal_data: bool = False,
                 retries: int = 5, backoff: float = 0.5, timeout: float = 5.0, queue_size: int = 10_000,
                 deliveries: Deliveries | None = None) -> None:
        self.url, self.secret = url, secret
        self.agent_url, self.personal_data = agent_url, personal_data
        self._own = deliveries is None
        self.deliveries = deliveries or Deliveries(name="kefu-webhook", retries=retries, backoff=backoff,
                                                   timeout=timeout, queue_size=queue_size)

    def public(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as it may leave the shop."""
        out = dict(event)
        if isinstance(event.get("handoff"), dict):
            h = event["handoff"]
            text = str(h.get("last_message") or "")
            out["handoff"] = {
                "id": h["id"], "status": h.get("status"), "reason": h.get("reason"), "intent": h.get("intent"),
                "guesses": h.get("guesses", []), "position": h.get("position"), "created_at": h.get("created_at"),
                "last_message": text if self.personal_data else mask(text),
                "url": handoff_link(self.agent_url, h["id"]),
            }
        return out

    def notify(self, event: dict[str, Any]) -> None:
        """Enqueue an event (signed once: the signature covers the body, not the time)."""
        body = json.dumps(self.public(event), ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(self.secret, body),
                   "X-Kefu-Event": str(event.get("type", ""))}
        self.deliveries.send(Outgoing("webhook", lambda: (self.url, body, headers)))

    def close(self, timeout: float = 5.0) -> None:
        if self._own:
            self.deliveries.close(timeout)
