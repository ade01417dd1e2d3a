"""The knowledge base's audit log: who changed which entry (or the shop's facts), when, from what to what."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select

from bot.service.schema import KbChange, as_utc
from bot.service.store import Store

MAX_PAGE = 200


@dataclass(frozen=True)
class Change:
    """One row of the log, as the console and the API show it."""

    id: int
    at: str  # ISO 8601 with the zone
    who: str
    target: str  # an entry's id, or "shop"
    action: str  # create | update | shop
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Row(NamedTuple):
    """One change to log: an entry (or "shop") and its state before and after."""

    target: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record(store: Store, who: str, rows: Sequence[Row]) -> None:
    """Add the rows of one change in one transaction, committed before this returns (the caller
    keeps its files only then)."""
    with store.tx(write=True) as s:
        s.add_all([KbChange(who=who, target=r.target, action=r.action, before=r.before, after=r.after) for r in rows])


def recent(store: Store, limit: int = 50, before: int | None = None) -> list[Change]:
    """The newest changes first: `limit` of them (at most MAX_PAGE), older than id `before` if given."""
    query = select(KbChange).order_by(KbChange.id.desc()).limit(max(1, min(limit, MAX_PAGE)))
    if before is not None:
        query = query.where(KbChange.id < before)
    with store.tx() as s:
        return [_change(c) for c in s.scalars(query)]


def _change(c: KbChange) -> Change:
    return Change(c.id, as_utc(c.at).isoformat(), c.who, c.target, c.action, c.before, c.after)
