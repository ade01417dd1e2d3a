"""What kefu posts to other systems, built once from the settings.

The handoff webhook and the agents' chat robots share one delivery thread (bot/service/webhook.py);
Chatwoot's replies have their own, so that a slow robot never keeps a shopper waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.config import Settings
from bot.integrations.chatwoot import ChatwootBot
from bot.integrations.robots import Robot, RobotNotifier
from bot.service.webhook import Deliveries, WebhookNotifier

Listener = Callable[[dict[str, Any]], None]


class Outbound:
    """The listeners of new handoffs (webhook, robots) and their delivery thread; the Chatwoot bot."""

    def __init__(self, settings: Settings) -> None:
        self.listeners: list[Listener] = []
        robots = [Robot(kind, url, secret) for kind, url, secret in settings.robots()]
        self.deliveries = Deliveries(name="kefu-notify") if settings.webhook_url or robots else None
        if self.deliveries is not None and settings.webhook_url:
            hook = WebhookNotifier(settings.webhook_url, settings.webhook_secret, agent_url=settings.agent_url(),
                                   personal_data=settings.webhook_personal_data, deliveries=self.deliveries)
            self.listeners.append(hook.notify)
        if self.deliveries is not None and robots:
            self.listeners.append(RobotNotifier(robots, self.deliveries, agent_url=settings.agent_url()).notify)
        self.chatwoot = None  # its replies have a thread of their own: a slow robot never delays a shopper
        if settings.chatwoot_url:
            self.chatwoot = ChatwootBot(settings.chatwoot_url, settings.chatwoot_bot_token,
                                        settings.chatwoot_webhook_secret, Deliveries(name="kefu-chatwoot"))

    def __bool__(self) -> bool:
        """Whether anyone listens (without listeners, the conversations need not call it)."""
        return bool(self.listeners)

    def notify(self, event: dict[str, Any]) -> None:
        """Tell every listener (each only enqueues)."""
        for listener in self.listeners:
            listener(event)

    def close(self) -> None:
        for deliveries in (self.deliveries, self.chatwoot.deliveries if self.chatwoot else None):
            if deliveries is not None:
                deliveries.close()
