"""Outbound webhook on a new handoff: HMAC-signed, retried with backoff, never blocking chat.

Deliveries go through a bounded queue to one background thread; the chat request only enqueues.
What leaves the shop is the least an agent needs: the handoff's id and a link to it in the agent
console, its reason and the bot's guesses. Never the session id (the shopper's only credential),
and the shopper's words with personal data masked unless the shop opts in (`personal_data`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from typing import Any

import httpx

from bot.language.pii import mask

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Kefu-Signature"


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>` of the body under the shared secret (as GitHub webhooks do)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """Posts events to one URL; retries 5xx and network errors with exponential backoff."""

    def __init__(self, url: str, secret: str, *, agent_url: str = "", personal_data: bool = False,
                 retries: int = 5, backoff: float = 0.5, timeout: float = 5.0, queue_size: int = 10_000) -> None:
        self.url, self.secret = url, secret
        self.agent_url, self.personal_data = agent_url, personal_data
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="kefu-webhook", daemon=True)
        self._thread.start()

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
                "url": f"{self.agent_url}#handoff-{h['id']}" if self.agent_url else None,
            }
        return out

    def notify(self, event: dict[str, Any]) -> None:
        """Enqueue an event; drops it (logged) rather than block when the queue is full."""
        try:
            self._queue.put_nowait(self.public(event))
        except queue.Full:
            log.warning("webhook queue full; event dropped")

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while (event := self._queue.get()) is not None:
                self._deliver(client, event)

    def _deliver(self, client: httpx.Client, event: dict[str, Any]) -> bool:
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", SIGNATURE_HEADER: sign(self.secret, body),
                   "X-Kefu-Event": str(event.get("type", ""))}
        for attempt in range(self.retries + 1):
            try:
                r = client.post(self.url, content=body, headers=headers)
                if r.status_code < 500:
                    if r.status_code >= 400:
                        log.warning("webhook refused with %s; not retried", r.status_code)
                    return r.status_code < 400
            except httpx.HTTPError as exc:
                log.warning("webhook attempt %d failed: %s", attempt + 1, exc)
            time.sleep(self.backoff * (2 ** attempt))
        log.error("webhook gave up after %d attempts", self.retries + 1)
        return False
