"""Outbound webhook on a new handoff: HMAC-signed, retried with backoff, never blocking chat.

Deliveries go through a bounded queue to one background thread; the chat request only enqueues.
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

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Kefu-Signature"


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>` of the body under the shared secret (as GitHub webhooks do)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """Posts events to one URL; retries 5xx and network errors with exponential backoff."""

    def __init__(self, url: str, secret: str, *, retries: int = 5, backoff: float = 0.5,
                 timeout: float = 5.0, queue_size: int = 10_000) -> None:
        self.url, self.secret = url, secret
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="kefu-webhook", daemon=True)
        self._thread.start()

    def notify(self, event: dict[str, Any]) -> None:
        """Enqueue an event; drops it (logged) rather than block when the queue is full."""
        try:
            self._queue.put_nowait(event)
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
