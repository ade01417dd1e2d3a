"""The agents' desk: who is there (online, busy, away), who gets a new chat, and chats whose agent went quiet.

- **Presence**: each agent chooses a status; the console is heard from through its event stream and its
  calls (`seen`). An agent not heard from for `presence_timeout` seconds, or who left (`left`), counts
  as away whatever they chose.
- **Assignment**: by hand (agents claim, as ever), or `auto`: the oldest waiting chat goes to the online
  agent whose turn it is (round robin: the lowest `turn`) among those with fewer than `max_chats` open
  chats; when nobody is free it waits, and is given when an agent comes online or frees a slot.
  An agent who let a chat go quiet is not given it again (they may still claim it by hand).
- **Reception**: `bot_first` (the bot answers, people take what it hands off), `human_first` (a chat's
  first message goes to a person while an agent is online), `bot_only_when_no_agent_online` (every
  message the bot would answer goes to a person while an agent is online).
- **Quiet agents**: a chat whose shopper has waited `requeue_after` seconds for its agent (counted from
  when that agent got it) goes back to the queue, with an agents-only note.

Plain arguments: api/ builds `DeskRules` from the settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import ColumnElement, func, select, text, update
from sqlalchemy.orm import Session

from bot.service.queue import reply_wait
from bot.service.schema import REQUEUE, AgentPresence, Handoff, Message, as_utc, insert_message, utcnow
from bot.service.store import Store

STATUSES = ("online", "busy", "away")
RECEPTIONS = ("bot_first", "human_first", "bot_only_when_no_agent_online")
WAITING_READ = 500  # waiting chats looked at per assignment (oldest first)


@dataclass(frozen=True)
class DeskRules:
    """The shop's choices (KEFU_ASSIGNMENT, KEFU_MAX_CHATS, KEFU_RECEPTION, KEFU_PRESENCE_TIMEOUT,
    KEFU_REQUEUE_AFTER) and its agents: nobody else (Chatwoot's agents, say) is assigned or requeued."""

    agents: tuple[str, ...]
    assignment: str = "manual"  # manual | auto
    max_chats: int = 5
    reception: str = "bot_first"
    presence_timeout: float = 60.0  # seconds
    requeue_after: float = 600.0  # seconds; 0: never


class Presence(NamedTuple):
    """An agent as the desk sees them: `status` as it counts (away when not heard from), `chosen` as set."""

    agent: str
    status: str
    chosen: str
    seen_at: dt.datetime | None
    chats: int  # open chats assigned to them


def _serialise(s: Session) -> None:
    """Assignments and requeues one at a time across processes (SQLite's write lock does it there)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(724159)"))


def _quiet_before(s: Session, handoff_ids: Sequence[int]) -> dict[int, set[str]]:
    """Handoff id -> the agents who let it go quiet (its requeue notes): not given it again automatically
    (they may still claim it by hand)."""
    rows = s.execute(select(Handoff.id, Message.author).join(Message, Message.session_id == Handoff.session_id)
                     .where(Handoff.id.in_(handoff_ids), Message.role == REQUEUE,
                            Message.id > func.coalesce(Handoff.message_id, 0))).all()
    out: dict[int, set[str]] = {}
    for handoff_id, author in rows:
        out.setdefault(handoff_id, set()).add(str(author))
    return out


def _taken() -> ColumnElement[dt.datetime]:
    """When the chat's present agent got it: an assignment or transfer (taken_at), else a claim."""
    return func.coalesce(Handoff.taken_at, Handoff.assigned_at)


class Desk:
    """Presence, assignment, reception and quiet agents over the store (each call one transaction)."""

    def __init__(self, store: Store, rules: DeskRules) -> None:
        self.store = store
        self.rules = rules

    # -- presence ------------------------------------------------------------------------------
    def _row(self, s: Session, agent: str) -> AgentPresence:
        row = s.get(AgentPresence, agent, with_for_update=True)
        if row is None:  # a first sign of life: someone who opens the console is there to work
            row = AgentPresence(agent=agent, status="online", seen_at=None, turn=0)
            s.add(row)
        return row

    def set_status(self, agent: str, status: str) -> Presence:
        """The agent chooses a status (and is heard from)."""
        with self.store.tx(write=True) as s:
            row = self._row(s, agent)
            row.status, row.seen_at = status, utcnow()
        return self.of(agent)

    def seen(self, agent: str) -> Presence:
        """The agent's console is there (a heartbeat): their chosen status counts again."""
        with self.store.tx(write=True) as s:
            self._row(s, agent).seen_at = utcnow()
        return self.of(agent)

    def left(self, agent: str) -> Presence:
        """The agent closed the console: away at once, their chosen status kept for their return."""
        with self.store.tx(write=True) as s:
            self._row(s, agent).seen_at = None
        return self.of(agent)

    def of(self, agent: str) -> Presence:
        return next(p for p in self.presence([agent]))

    def presence(self, agents: Sequence[str] | None = None) -> list[Presence]:
        """The shop's agents (or `agents`), each with the status that counts and their open chats."""
        names = list(agents if agents is not None else self.rules.agents)
        if not names:  # a shop without agents (each handoff asks whether anyone is there): no query
            return []
        with self.store.tx() as s:
            rows = {r.agent: r for r in s.scalars(select(AgentPresence).where(AgentPresence.agent.in_(names)))}
            chats = {a: n for a, n in s.execute(select(Handoff.agent, func.count()).where(
                Handoff.status == "assigned", Handoff.agent.in_(names)).group_by(Handoff.agent))}
        fresh = utcnow() - dt.timedelta(seconds=self.rules.presence_timeout)
        out = []
        for name in names:
            row = rows.get(name)
            chosen = row.status if row is not None else "away"
            here = row is not None and row.seen_at is not None and as_utc(row.seen_at) >= fresh
            out.append(Presence(name, chosen if here else "away", chosen, row.seen_at if row else None,
                                int(chats.get(name, 0))))
        return out

    def anyone(self, *statuses: str) -> bool:
        """Whether any of the shop's agents counts as one of `statuses` now."""
        return any(p.status in statuses for p in self.presence())

    # -- reception -----------------------------------------------------------------------------
    def to_person(self, first: bool) -> bool:
        """Whether a message the bot would answer goes to a person instead (`first`: the chat's first)."""
        mode = self.rules.reception
        if mode == "bot_first" or (mode == "human_first" and not first):
            return False
        return self.anyone("online")

    # -- assignment ----------------------------------------------------------------------------
    def _free(self, s: Session) -> dict[str, list[int]]:
        """Online agents under their limit: name -> [turn, open chats]."""
        fresh = utcnow() - dt.timedelta(seconds=self.rules.presence_timeout)
        rows = s.scalars(select(AgentPresence).where(AgentPresence.agent.in_(self.rules.agents),
                                                     AgentPresence.status == "online",
                                                     AgentPresence.seen_at >= fresh)).all()
        chats = {a: n for a, n in s.execute(select(Handoff.agent, func.count()).where(Handoff.status == "assigned")
                                            .group_by(Handoff.agent))}
        return {r.agent: [r.turn, int(chats.get(r.agent, 0))] for r in rows
                if chats.get(r.agent, 0) < self.rules.max_chats}

    def assign(self) -> list[Handoff]:
        """In `auto` mode, waiting chats given, oldest first, round robin to online agents under their limit
        (one transaction); the chats given."""
        if self.rules.assignment != "auto":
            return []
        with self.store.tx() as s:  # most calls find nothing to do: a read, no write lock
            if not self._free(s) or s.scalar(select(func.count()).where(Handoff.status == "waiting")) == 0:
                return []
        given: list[Handoff] = []
        with self.store.tx(write=True) as s:
            _serialise(s)
            free = self._free(s)
            turn = int(s.scalar(select(func.max(AgentPresence.turn))) or 0)
            waiting = s.scalars(select(Handoff.id).where(Handoff.status == "waiting").order_by(Handoff.id)
                                .limit(WAITING_READ)).all()
            skip = _quiet_before(s, waiting)
            now = utcnow()
            for handoff_id in waiting:
                ready = [a for a, (_, n) in free.items()
                         if n < self.rules.max_chats and a not in skip.get(handoff_id, ())]
                if not ready:
                    if not any(n < self.rules.max_chats for _, n in free.values()):
                        break
                    continue
                agent = min(ready, key=lambda a: (free[a][0], a))
                done = s.execute(update(Handoff).where(Handoff.id == handoff_id, Handoff.status == "waiting")
                                 .values(status="assigned", agent=agent, taken_at=now,
                                         assigned_at=func.coalesce(Handoff.assigned_at, now))
                                 .execution_options(synchronize_session=False))
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                turn += 1
                free[agent] = [turn, free[agent][1] + 1]
                s.execute(update(AgentPresence).where(AgentPresence.agent == agent).values(turn=turn))
                h = s.get(Handoff, handoff_id, populate_existing=True)
                if h is not None:
                    given.append(h)
        return given

    # -- quiet agents --------------------------------------------------------------------------
    def requeue_quiet(self) -> list[tuple[Handoff, str, Message]]:
        """Chats whose shopper has waited `requeue_after` seconds for their agent, back in the queue, each
        with its former agent and the agents-only note left in it (one transaction)."""
        if not self.rules.requeue_after or not self.rules.agents:  # only the shop's agents' chats are requeued
            return []
        cutoff = utcnow() - dt.timedelta(seconds=self.rules.requeue_after)
        quiet: tuple[ColumnElement[bool], ...] = (Handoff.status == "assigned", Handoff.agent.in_(self.rules.agents),
                                                  _taken() <= cutoff, reply_wait() <= cutoff)
        with self.store.tx() as s:
            if not s.scalars(select(Handoff.id).where(*quiet).limit(1)).first():
                return []
        out = []
        with self.store.tx(write=True) as s:
            _serialise(s)
            now = utcnow()
            for h in s.scalars(select(Handoff).where(*quiet).order_by(Handoff.id)).all():
                agent = str(h.agent)
                done = s.execute(update(Handoff).where(Handoff.id == h.id, Handoff.status == "assigned",
                                                       Handoff.agent == agent)
                                 .values(status="waiting", agent=None, taken_at=None)
                                 .execution_options(synchronize_session=False))
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                note = insert_message(s, h.session_id, REQUEUE, "", now, author=agent,
                                      extra={"after": int(self.rules.requeue_after)})
                s.refresh(h)
                out.append((h, agent, note))
        return out
