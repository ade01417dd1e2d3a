"""The shop's facts (shop.yml) as a manager edits them: values at dotted keys, checked and typed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.dialogue import knowledge
from bot.errors import InvalidInputError, KnowledgeBaseError
from bot.language.normalize import check_text
from bot.manage import yamltext

MAX_VALUE_CHARS = 500


@dataclass(frozen=True)
class ShopView:
    """shop.yml as read, the values a manager can edit by dotted key, and the version they were read at."""

    values: Mapping[str, Any]
    fields: Mapping[str, Any]  # "shipping.cutoff_time" -> "16:00": single values and lists of them
    version: str


def read(data_dir: Path) -> ShopView:
    """The shop's facts now; the version is a hash of the file as stored."""
    path = data_dir / knowledge.SHOP_FILE
    shop = knowledge.load_shop(data_dir)
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return ShopView(shop.data, _fields(shop.data), version)


def _is_value(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _fields(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every single value and list of texts, by dotted key (lists of tables, such as the
    size chart, are edited in the file)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_fields(value, dotted + yamltext.SHOP_KEY_SEP))
        elif _is_value(value) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            out[dotted] = value
    return out


def check_value(key: str, old: Any, new: Any) -> Any:
    """`new` if it is of the kind `old` is (text, number, yes/no, list of texts); else 422."""
    if isinstance(old, list):
        if not isinstance(new, list) or not all(isinstance(v, str) and v.strip() for v in new):
            raise InvalidInputError(f"{key} is a list of texts")
        return [_text(key, v) for v in new]
    if isinstance(old, bool) or isinstance(new, bool):
        if not (isinstance(old, bool) and isinstance(new, bool)):
            raise InvalidInputError(f"{key} is {'true or false' if isinstance(old, bool) else 'not true or false'}")
        return new
    if isinstance(old, int | float):
        if not isinstance(new, int | float):
            raise InvalidInputError(f"{key} is a number")
        return new
    if not isinstance(new, str):
        raise InvalidInputError(f"{key} is a text")
    return _text(key, new)


def _text(key: str, value: str) -> str:
    text = check_text(value, what=key, max_chars=MAX_VALUE_CHARS).strip()
    if "\n" in text or "\r" in text:
        raise InvalidInputError(f"{key} must be one line")
    return text


def plan(text: str, view: ShopView, values: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """shop.yml's new text for `values`, with the values before and after (for the audit log)."""
    if not values:
        raise InvalidInputError("no values to change")
    before, after = {}, {}
    for key, new in values.items():
        if key not in view.fields:
            raise InvalidInputError(f"shop.yml has no editable value {key}; only existing values can be edited here")
        after[key] = check_value(key, view.fields[key], new)
        before[key] = view.fields[key]
        text = yamltext.set_shop_value(text, key, after[key])
    return text, before, after


def expect(data_dir: Path, after: Mapping[str, Any]) -> ShopView:
    """shop.yml read back: each value as written (type included), or KnowledgeBaseError."""
    view = read(data_dir)
    for key, value in after.items():
        got = view.fields.get(key)
        if got != value or isinstance(got, bool) != isinstance(value, bool):
            raise KnowledgeBaseError(f"shop.yml: {key} did not read back as written ({got!r}); nothing changed")
    return view
