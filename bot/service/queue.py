"""The agents' queue: every open handoff, resolved ones a page at a time, filtered and searched.

Each open handoff comes with its place among the waiting ones and the time since the shopper has
been waiting for a person's reply (their first message after the agent's last one, None when the
agent spoke last): both read in the same query as the handoffs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from bot.service.schema import CLOSED_STATUSES, OPEN_STATUSES, Handoff, Message

# Whose words a search reads: the bot's replies (转人工, 人工客服...) would match every chat.
PEOPLE = ("shopper", "agent")


class QueueRow(NamedTuple):
    """An open handoff, its 1-based place among waiting ones (None unless waiting), and since when
    the shopper has waited for a person's reply (None when the agent wrote last)."""

    handoff: Handoff
    position: int | None
    waiting_since: dt.datetime | None


@dataclass(frozen=True)
class QueueFilter:
    """What the agent narrows the queue to; None: no condition."""

    reason: str | None = None
    agent: str | None = None
    text: str | None = None  # in what the shopper and agents said in the chat, the handoff's last message or its note
    older_than: dt.timedelta | None = None  # handed off at least this long ago

    def conditions(self, now: dt.datetime) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.reason is not None:
            out.append(Handoff.reason == self.reason)
        if self.agent is not None:
            out.append(Handoff.agent == self.agent)
        if self.older_than is not None:
            out.append(Handoff.created_at <= now - self.older_than)
        if self.text:
            said = exists().where(Message.session_id == Handoff.session_id, Message.role.in_(PEOPLE),
                                  Message.text.contains(self.text, autoescape=True))
            out.append(or_(Handoff.last_message.contains(self.text, autoescape=True),
                           Handoff.note.contains(self.text, autoescape=True), said))
        return out


def reply_wait() -> Any:
    """Since when the handoff's shopper has waited for a person (a correlated scalar subquery):
    their first message of the handoff after the agent's last one."""
    shopper, agent = aliased(Message), aliased(Message)
    last_agent = (select(func.max(agent.id)).where(agent.session_id == Handoff.session_id, agent.role == "agent")
                  .correlate(Handoff).scalar_subquery())  # two levels down: named, not inferred
    return (select(func.min(shopper.created_at))
            .where(shopper.session_id == Handoff.session_id, shopper.role == "shopper",
                   shopper.id >= func.coalesce(Handoff.message_id, 0), shopper.id > func.coalesce(last_agent, 0))
            .scalar_subquery())


def _place() -> Any:
    """The handoff's place among waiting ones (counted whether or not it waits itself)."""
    before = aliased(Handoff)
    return select(func.count()).where(before.status == "waiting", before.id <= Handoff.id).scalar_subquery()


def open_rows(s: Session, status: str | None, where: QueueFilter, now: dt.datetime) -> list[QueueRow]:
    """Every waiting and assigned handoff (or those of one open status) that `where` keeps, oldest
    first, with no cap: one query, whatever the history."""
    statuses = (status,) if status else OPEN_STATUSES
    q: Select[Any] = (select(Handoff, _place(), reply_wait())
                      .where(Handoff.status.in_(statuses), *where.conditions(now)).order_by(Handoff.id))
    return [QueueRow(h, place if h.status == "waiting" else None, since) for h, place, since in s.execute(q)]


def closed_page(s: Session, limit: int, before: int | None, where: QueueFilter, now: dt.datetime) -> list[Handoff]:
    """Resolved handoffs that `where` keeps, newest first, `limit` of them below the id `before`."""
    q = select(Handoff).where(Handoff.status.in_(CLOSED_STATUSES), *where.conditions(now))
    if before is not None:
        q = q.where(Handoff.id < before)
    return list(s.scalars(q.order_by(Handoff.id.desc()).limit(limit)))


def open_counts(s: Session) -> dict[str, int]:
    """How many handoffs are open, by status (waiting, assigned): one counting query."""
    q = select(Handoff.status, func.count()).where(Handoff.status.in_(OPEN_STATUSES)).group_by(Handoff.status)
    found = {str(status): int(n) for status, n in s.execute(q).all()}
    return {status: found.get(status, 0) for status in OPEN_STATUSES}
