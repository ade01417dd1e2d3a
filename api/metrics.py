"""Prometheus metrics (prometheus_client): what every request and every turn adds, and /metrics' text.

Labels are bounded: a route's template (never its session id), a method, a status, a route
(faq | human), a handoff reason, a catalogue entry. With several workers, each writes its counts to
files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, which `kefu serve
--workers N` sets up: api.server.share_metrics) and a scrape of any worker adds them all up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.dialogue.results import Reply
from bot.errors import StoreUnavailableError

SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The bot's reading of a message (normalise, rank, decide) aims at 2 ms: buckets around it.
READING = (0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1)
CONFIDENCE = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0)
# No route: a path the app does not have (404), or a request refused before routing (413, 408, the
# per-address 429). One label, whatever was asked.
UNMATCHED = "unmatched"
ROUTE_KEY = "kefu.route"  # in the scope: where RouteRecorder leaves the route for MetricsMiddleware
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"

REQUESTS = Counter("kefu_http_requests", "HTTP requests by route template, method and status",
                   ["route", "method", "status"])
DURATION = Histogram("kefu_http_request_duration_seconds", "HTTP request durations by route template, method "
                     "and status (an event stream's lasts as long as it is open)", ["route", "method", "status"],
                     buckets=SECONDS)
MESSAGES = Counter("kefu_messages", "Shoppers' messages by route (faq: the bot's to answer; human: a person's)",
                   ["route"])
HANDOFFS = Counter("kefu_handoffs", "New handoffs to a person by reason", ["reason"])
ANSWERS = Counter("kefu_answers", "The bot's answers by catalogue entry", ["intent"])
CLASSIFICATION = Histogram("kefu_classification_duration_seconds", "The bot's reading of one message "
                           "(normalise, rank, decide), without the database", buckets=READING)
CONFIDENCES = Histogram("kefu_confidence", "The confidence of the bot's replies", buckets=CONFIDENCE)


def observe_turn(reply: Reply, seconds: float) -> None:
    """One shopper message (bot.service.conversations.Conversations.observe)."""
    MESSAGES.labels(reply.route).inc()
    CLASSIFICATION.observe(seconds)
    if reply.reply is None:  # a message to the person who has the chat: the bot said nothing
        return
    CONFIDENCES.observe(reply.confidence)
    if reply.action == "handoff":  # a new handoff (the shopper is told a person is coming)
        HANDOFFS.labels(reply.reason or "requested").inc()
    elif reply.action == "answer":
        for intent in reply.intents or [reply.intent or "none"]:
            ANSWERS.labels(intent).inc()


class AppCollector:
    """Read at each scrape: the open handoffs and the model in service of the scraped process."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        model = self.state.bot().model
        info = GaugeMetricFamily("kefu_model_info", "The model in service", labels=["version", "embedder"])
        info.add_metric([model.version, str(model.metadata.get("embedder", ""))], 1)
        yield info
        try:
            counts = self.state.conversations.queue_counts()
        except StoreUnavailableError:
            return
        queue = GaugeMetricFamily("kefu_queue_length", "Open handoffs by status (waiting: for an agent)",
                                  labels=["status"])
        for status, n in counts.items():
            queue.add_metric([status], n)
        yield queue


def exposition(state: Any) -> bytes:
    """The text of /metrics: every worker's counts (or this process's, with its process metrics),
    then what the scraped process reads now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared)
    else:
        shared = REGISTRY
    now = CollectorRegistry(auto_describe=False)
    now.register(AppCollector(state))
    return generate_latest(shared) + generate_latest(now)


class RouteRecorder:
    """The innermost middleware: after the app has answered, the template of the route it chose
    (/v1/chat/{session_id}/messages), left in a dict the outer MetricsMiddleware put in the scope (a
    middleware that copies the scope copies the reference)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "")
        try:
            await self.app(scope, receive, send)
        finally:
            route, seen = scope.get("route"), scope.get(ROUTE_KEY)
            if seen is not None and isinstance(getattr(route, "path", None), str):
                seen["route"] = route.path  # type: ignore[union-attr]
            elif seen is not None and scope.get("root_path", root) != root:  # a mount: /static
                seen["route"] = scope["root_path"][len(root):]


class MetricsMiddleware:
    """Counts and times every HTTP request, by route template, method and status (the outermost
    middleware: refusals of the others, 413 and 429, are counted too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500
        seen: dict[str, str] = {}
        scope = {**scope, ROUTE_KEY: seen}

        async def sent(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        try:
            await self.app(scope, receive, sent)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            labels = (seen.get("route", UNMATCHED), method, str(status))
            REQUESTS.labels(*labels).inc()
            DURATION.labels(*labels).observe(time.perf_counter() - started)
