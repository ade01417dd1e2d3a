"""The shop's voice: every sentence and label kefu shows shoppers, in one place.

Defaults live in voice.yml beside this module; a shop rewords any of them in its shop.yml under
the same keys. Code never holds shopper-facing Chinese (tests/test_architecture.py checks): it
asks `say` for a sentence, `fmt` for a piece of an answer, `widget` for the widget's labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import yaml

VOICE_FILE = Path(__file__).resolve().with_name("voice.yml")


class Shop(Protocol):
    """The shop's settings (bot.dialogue.knowledge.ShopConfig): dotted lookups."""

    def get(self, path: str, default: Any = None) -> Any: ...


@lru_cache(maxsize=1)
def defaults() -> Mapping[str, Any]:
    return yaml.safe_load(VOICE_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _default(path: str) -> Any:
    node: Any = defaults()
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def phrase(shop: Shop, path: str) -> Any:
    """The shop's own value at `path` (`replies.clarify`), else kefu's default; None if neither."""
    own = shop.get(path)
    return own if own not in (None, "") else _default(path)


def is_own(shop: Shop, path: str) -> bool:
    """Whether the shop set `path` itself."""
    return shop.get(path) not in (None, "")


def _fill(template: Any, shop: Shop, values: dict[str, Any]) -> str:
    base = {"name": shop.get("name", ""), "assistant_name": shop.get("assistant_name", "")}
    return str(template or "").format(**{**base, **values})


def say(shop: Shop, key: str, **values: Any) -> str:
    """A sentence for the shopper: `replies.<key>`, its placeholders filled."""
    return _fill(phrase(shop, f"replies.{key}"), shop, values)


def fmt(shop: Shop, key: str, **values: Any) -> str:
    """A piece answers are built from: `formats.<key>`, filled."""
    return _fill(phrase(shop, f"formats.{key}"), shop, values)


def join(shop: Shop, items: list[str]) -> str:
    return str(phrase(shop, "formats.separator")).join(items)


def widget(shop: Shop) -> dict[str, Any]:
    """What the widget shows: its labels (the shop's over the defaults), quick replies, and the
    message its 转人工 button sends."""
    hours = shop.get("service_hours") or {}
    texts = {**(_default("widget.texts") or {}), **(shop.get("widget.texts") or {})}
    texts = {k: str(v) for k, v in texts.items()}
    texts["subtitle"] = texts["subtitle"].format(open=hours.get("open", ""), close=hours.get("close", ""))
    quick = phrase(shop, "widget.quick_replies")
    return {"texts": texts, "quick_replies": list(quick or []),
            "handoff_message": str(phrase(shop, "widget.handoff_message"))}
