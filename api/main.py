"""Assemble the FastAPI app: load the bot and the store once, mount routers and pages."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import errors, logs, metrics, middleware, server
from api.integrations import Outbound
from api.routes import (
    admin,
    assist,
    chat,
    handoffs,
    health,
    images,
    kb,
    orders,
    pages,
    presence,
    rasa,
    review,
    stats,
    train,
    widget,
)
from api.routes.chatwoot import router as chatwoot_router
from api.routes.metrics import router as metrics_router
from bot import __version__
from bot.assist.phrases import PhraseBook
from bot.config import Settings, get_settings
from bot.dialogue.engine import Bot
from bot.errors import KefuError
from bot.language import artefacts
from bot.loader import load_bot
from bot.service.conversations import Conversations
from bot.service.desk import Desk, DeskRules
from bot.service.events import EventBus, RedisEventBus
from bot.service.store import Store

log = logging.getLogger(__name__)
# Reloads are announced here; each process ignores its own announcements.
MODELS_CHANNEL = "models"
ORIGIN = secrets.token_hex(8)


class BotHolder:
    """The bot in service. A new model is loaded and verified aside, then swapped in with one
    assignment, so requests in flight finish on the model they started with."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self.bot: Bot = self._load(None)
        self.events: EventBus | None = None  # set once the app has its bus: reloads are announced on it
        self._candidate: Bot | None = None

    def __call__(self) -> Bot:
        return self.bot

    def _load(self, version: str | None) -> Bot:
        s = self.settings
        return load_bot(s.data_dir, s.models_dir, embedder=s.embedder, overrides=s.policy.model_dump(),
                        version=version)

    def reload(self, version: str | None = None, *, publish: bool = False, announce: bool = True) -> str:
        """Swap in `version` (default: models/CURRENT) with the knowledge base as it is on disk; raise
        and keep the old bot if it fails. `publish` also makes it current on disk (a restart keeps
        it); every other process of the shop follows (`announce`, through the event bus: Redis when
        several serve)."""
        with self._lock:
            bot = self._load(version)
            self.bot = bot
            if publish:
                artefacts.publish(self.settings.models_dir, bot.model.version)
        log.info("model %s in service", bot.model.version)
        if announce and self.events is not None:
            self.events.publish(MODELS_CHANNEL, {"type": "reload", "version": bot.model.version, "origin": ORIGIN})
        return bot.model.version

    async def follow(self) -> None:
        """Reload whenever another process announces a reload (a publish, a rollback, an edit of the
        knowledge base), so that every process serves the same model and answers."""
        assert self.events is not None
        async with self.events.subscribe(MODELS_CHANNEL) as queue:
            while True:
                event = await queue.get()
                if event.get("origin") != ORIGIN:
                    await asyncio.to_thread(_safe_reload, self, str(event.get("version")))

    def candidate(self, version: str) -> Bot:
        """The bot of another model folder, for hit testing before it is published (the last one
        asked for is kept: the manager tries several messages on it)."""
        with self._lock:
            if version == self.bot.model.version:
                return self.bot
            if self._candidate is None or self._candidate.model.version != version:
                self._candidate = self._load(version)
            return self._candidate

    def rollback(self) -> str:
        """Serve the predecessor of the model in service (not of models/CURRENT, which a reload by
        name leaves alone), then make it current on disk once it has loaded."""
        models = self.settings.models_dir
        return self.reload(artefacts.previous_version(models, self.bot.model.version), publish=True)


def _on_sighup(holder: BotHolder) -> None:
    """`kill -HUP <pid>` reloads models/CURRENT without a restart."""

    def handler() -> None:
        loop.run_in_executor(None, _safe_reload, holder)

    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests) or no signals
        pass


def _safe_reload(holder: BotHolder, version: str | None = None) -> None:
    try:
        holder.reload(version, announce=False)
    except KefuError as exc:
        log.error("model reload refused, still serving %s: %s", holder.bot.model.version, exc)


@contextmanager
def _no_collection() -> Iterator[None]:
    """No automatic garbage collection inside (each one scans what has been loaded so far, again and
    again while the model loads: 0.3 s of a server's start); the collector as it was after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.protect()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with _no_collection():  # start-up makes the model's objects by the million: one collection, at the end
            store = Store(settings.database_url)
            # The model and the database's migrations at once: the migrations wait on the disk while the model
            # loads.
            holder, _ = await asyncio.gather(asyncio.to_thread(BotHolder, settings),
                                             asyncio.to_thread(store.create_schema))
            _on_sighup(holder)
            app.state.settings = settings
            app.state.bot = holder
            # the webhook, the robots, Chatwoot (api/integrations.py)
            notifier = app.state.outbound = Outbound(settings)
            events = RedisEventBus(settings.redis_url, settings.redis_prefix) if settings.redis_url else EventBus()
            desk = Desk(store, DeskRules(tuple(sorted(set(settings.agents().values()))), settings.assignment,
                                         settings.max_chats, settings.reception, settings.presence_timeout,
                                         settings.requeue_after))
            app.state.conversations = Conversations(holder, store, events, notify=notifier.notify if notifier else None,
                                                    display_names=settings.display_names(), desk=desk)
            app.state.phrases = PhraseBook(settings.phrases_file)  # a broken file stops start-up, with what to fix
            app.state.phrases.check(holder.bot.kb.shop)
            holder.events = events
            app.state.conversations.observe = metrics.observe_turn
            app.state.training = train.training_jobs(settings)
            follower = asyncio.create_task(holder.follow())
            sweeper = asyncio.create_task(presence.sweep(app.state.conversations))
            # The model and its vocabularies are hundreds of thousands of long-lived objects: move them
            # out of the collector's sight, so that full collections stop scanning them mid-request.
            gc.collect()
            gc.freeze()
            if settings.pin_core and (core := server.pin_to_one_core()) is not None:
                log.info("serving on core %d (KEFU_PIN_CORE=false leaves it to the kernel)", core)
        yield
        follower.cancel()
        sweeper.cancel()
        events.close()
        notifier.close()
        store.close()

    # /docs is served by routes/pages.py from kefu's own copy of Swagger UI (no CDN, strict CSP).
    app = FastAPI(title="kefu", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Customer-service bot for Chinese online shops: FAQ answers or a human agent.")
    errors.install(app)
    app.add_middleware(metrics.RouteRecorder)  # the innermost: it sees the route the app chose
    middleware.install(app, settings)
    app.add_middleware(metrics.MetricsMiddleware)  # the outermost: the others' refusals are counted too
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(images.router)
    app.include_router(handoffs.router)
    app.include_router(assist.router)
    app.include_router(presence.router)
    app.include_router(admin.router)
    app.include_router(review.router)
    app.include_router(kb.router)
    app.include_router(train.router)
    app.include_router(stats.router)
    app.include_router(orders.router)
    app.include_router(widget.router)
    app.include_router(rasa.router)
    app.include_router(chatwoot_router)
    app.include_router(pages.router)
    app.include_router(metrics_router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=pages.SWAGGER_UI), name="docs-assets")
    return app
