"""The review queue: the shopper messages the bot did not know, grouped, and the manager's decisions.

A shop teaches its bot from what it missed. The queue holds the shopper messages the bot handed
off because it was unsure or out of its depth, the turns where it asked to rephrase or offered
quick replies, and the handoffs an agent labelled otherwise than the bot guessed. Similar messages
are grouped (bot.manage.grouping), so that a new question is taught once, not message by message.
A decision (add them as examples, make a new entry, "always a person", dismiss) is recorded per
message with who made it and when: a decided message leaves the queue, and nothing is deleted.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

from sqlalchemy import Row, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from bot.dialogue import rules
from bot.dialogue.engine import Bot
from bot.dialogue.results import Reason
from bot.errors import ConflictError, InvalidInputError, KefuError, NotFoundError
from bot.language.normalize import normalize
from bot.manage.entries import MAX_EXAMPLE_CHARS
from bot.manage.grouping import Cluster, Item, group
from bot.service.schema import Handoff, Message, ReviewDecision, as_utc, utcnow
from bot.service.store import Store

# The newest this many undecided messages are grouped: the work of a GET stays bounded however long
# the history (2000 distinct texts: 0.9 s with their vectors cached, as the server has them from the
# chats, 3.3 s cold, on two busy cores), and older ones come up as newer ones are decided.
MAX_ITEMS = 2000
# Handoffs that say the bot did not know: unsure, out of its scope, or unsure turn after turn.
UNSURE_REASONS = ("low_confidence", "out_of_scope", "repeated_fallback")
# Reasons a rule gives for sure; given by the model alone (no rule fired), and unsure, they are a guess.
GUESSED_REASONS = ("requested", "complaint", "problem")
# Bot turns that show it did not know: it asked to rephrase, or offered quick replies; and an answer of two
# entries, neither sure alone (bot.dialogue.policy: 退货条件 / 怎么退), shown as PAIR.
TURN_ACTIONS = ("clarify", "suggest")
PAIR = "pair"
HUMAN_ENTRY = "human.other"  # "always a person": the examples of the catch-all human entry
Action = Literal["add_examples", "new_entry", "human", "dismiss"]
ACTIONS: tuple[Action, ...] = ("add_examples", "new_entry", "human", "dismiss")


class Edited(Protocol):
    """What an edit tells the queue: whether the model has something new to learn."""

    @property
    def retrain(self) -> bool: ...


class Editor(Protocol):
    """What the review queue needs of the knowledge base editor (bot.manage.editor.KnowledgeEditor)."""

    def add_examples(self, intent: str, texts: list[str], who: str) -> Edited: ...

    def create_entry(self, intent: str, title: str, answer: str, examples: list[str], who: str) -> Edited: ...


def open_items(store: Store, sure: float, limit: int = MAX_ITEMS) -> list[Item]:
    """The newest `limit` undecided messages the bot did not know, newest first. `sure`: the
    probability the bot needs to answer, below which a human entry the model chose was a guess."""
    with store.tx() as s:
        turns = _turn_items(s, limit)
        handed = _handoff_items(s, sure, limit)
    merged = {i.id: i for i in turns} | {i.id: i for i in handed}  # a handoff (and its label) says more
    return sorted(merged.values(), key=lambda i: -i.id)[:limit]


def _handoff_items(s: Session, sure: float, limit: int) -> list[Item]:
    relabelled = and_(Handoff.label.is_not(None), or_(Handoff.intent.is_(None), Handoff.label != Handoff.intent))
    q = (select(Handoff.reason, Handoff.intent, Handoff.label, Handoff.guesses, Message.id, Message.text,
                Message.created_at)
         .join(Message, Message.id == Handoff.message_id)
         .where(or_(Handoff.reason.in_(UNSURE_REASONS + GUESSED_REASONS), relabelled),
                ~exists().where(ReviewDecision.message_id == Handoff.message_id))
         .order_by(Handoff.id.desc()).limit(limit))
    out = []
    for row in s.execute(q):
        source = _handoff_source(row, sure)
        if source is not None:
            out.append(Item(row.id, row.text, as_utc(row.created_at), source, row.intent, row.label))
    return out


def _handoff_source(row: Row[Any], sure: float) -> str | None:
    """Why a handed-off message is in the queue, or None when the bot knew what it was doing: a rule
    fired (teaching the model would not change the route), or the model was sure."""
    if row.label is not None and row.label != row.intent:
        return "relabelled"
    if row.reason in UNSURE_REASONS:
        return str(row.reason)
    top = float(row.guesses[0]["confidence"]) if row.guesses else 0.0
    return str(row.reason) if top < sure and rules.match(normalize(row.text)) is None else None


def _turn_items(s: Session, limit: int) -> list[Item]:
    """Shopper messages answered by a request to rephrase, by quick replies or by two entries: the shopper message
    just before each such bot message (the newest undecided `limit`)."""
    bot, asked = aliased(Message), aliased(Message)
    action, reason = bot.extra["action"].as_string(), bot.extra["reason"].as_string()
    before = (select(func.max(asked.id))
              .where(asked.session_id == bot.session_id, asked.role == "shopper", asked.id < bot.id)
              .correlate(bot).scalar_subquery())
    unsure = or_(action.in_(TURN_ACTIONS), and_(action == "answer", reason == Reason.LOW_CONFIDENCE.value))
    q = (select(bot.intent, action.label("action"), before.label("shopper"))
         .where(bot.role == "bot", unsure, ~exists().where(ReviewDecision.message_id == before))
         .order_by(bot.id.desc()).limit(limit))
    turns = [r for r in s.execute(q) if r.shopper is not None]
    said = {m.id: m for m in s.scalars(select(Message).where(Message.id.in_([r.shopper for r in turns])))}
    return [Item(m.id, m.text, as_utc(m.created_at), PAIR if r.action == "answer" else str(r.action), r.intent)
            for r in turns if (m := said.get(r.shopper)) is not None]


def _example(item: Item) -> str:
    """A shopper message as an example: one line (an example is a line of its file), short enough."""
    text = " ".join(item.text.split())
    if len(text) > MAX_EXAMPLE_CHARS:
        raise InvalidInputError(f"message {item.id} is longer than an example may be ({MAX_EXAMPLE_CHARS} "
                                "characters): leave it out with message_ids, or dismiss it")
    return text


class ReviewQueue:
    """The queue over a store and the bot in service; decisions go through the knowledge base editor.

    The grouping of the last read is kept: a decision names a group by its id, and finds it again
    without grouping anew as long as the queue and the model have not changed.
    """

    def __init__(self, store: Store, bot: Callable[[], Bot], editor: Editor | None = None,
                 limit: int = MAX_ITEMS) -> None:
        self.store = store
        self._bot = bot
        self.editor = editor
        self.limit = limit
        self._lock = threading.Lock()
        self._last: tuple[tuple[Any, ...], list[Cluster]] | None = None

    def clusters(self) -> list[Cluster]:
        """The open groups, biggest first."""
        bot = self._bot()
        items = open_items(self.store, bot.thresholds.answer, self.limit)
        key = (bot.model.version, *items)
        with self._lock:
            if self._last is not None and self._last[0] == key:
                return self._last[1]
        clusters = group(items, bot.model)
        with self._lock:
            self._last = (key, clusters)
        return clusters

    def decide(self, cluster_id: str, action: str, who: str, *, intent: str | None = None,
               title: str | None = None, answer: str | None = None,
               message_ids: Iterable[int] | None = None) -> dict[str, Any]:
        """Apply a decision to a group (or to some of its messages) and record it for each message.

        The knowledge base changes first, then the decisions are stored: a failure in between
        leaves the messages in the queue, to be decided again (adding an example twice keeps one).
        """
        if action not in ACTIONS:
            raise InvalidInputError(f"action must be one of {', '.join(ACTIONS)}")
        chosen = self._chosen(self._find(cluster_id), message_ids)
        target, retrain = self._apply(action, chosen, who, intent, title, answer)
        at = self._record(chosen, action, target, who)
        return {"cluster": cluster_id, "action": action, "intent": target, "message_ids": [i.id for i in chosen],
                "who": who, "at": at.isoformat(), "retrain": retrain}

    def _find(self, cluster_id: str) -> Cluster:
        for cluster in self.clusters():
            if cluster.id == cluster_id:
                return cluster
        raise NotFoundError(f"no open review group {cluster_id}: the queue changed since it was read "
                            "(new messages, or someone decided them); read it again")

    @staticmethod
    def _chosen(cluster: Cluster, message_ids: Iterable[int] | None) -> list[Item]:
        if message_ids is None:
            return list(cluster.items)
        wanted = set(message_ids)
        if not wanted:
            raise InvalidInputError("message_ids is empty: leave it out to decide the whole group")
        chosen = [i for i in cluster.items if i.id in wanted]
        if len(chosen) != len(wanted):
            stray = sorted(wanted - {i.id for i in chosen})
            raise InvalidInputError(f"message_ids must name messages of group {cluster.id}; not in it: {stray}")
        return chosen

    def _apply(self, action: str, chosen: list[Item], who: str, intent: str | None, title: str | None,
               answer: str | None) -> tuple[str | None, bool]:
        """Change the knowledge base as the action says: the entry the messages went to, and whether
        the model has new examples to learn (none when the entry had them all already)."""
        if action == "dismiss":
            return None, False
        intent = HUMAN_ENTRY if action == "human" else intent
        if not intent:
            raise InvalidInputError(f"{action} needs 'intent'")
        if action == "new_entry" and not (title and answer):
            raise InvalidInputError("new_entry needs 'title' and 'answer'")
        texts = list(dict.fromkeys(_example(i) for i in chosen))
        try:
            if action == "new_entry":
                edit = self._editor().create_entry(intent, str(title), str(answer), texts, who)
            else:
                edit = self._editor().add_examples(intent, texts, who)
        except NotFoundError as exc:  # an entry that does not exist is a bad request, not a missing group
            raise InvalidInputError(str(exc)) from None
        return intent, edit.retrain

    def _editor(self) -> Editor:
        if self.editor is None:
            raise KefuError("this review queue cannot edit the knowledge base (no editor given)")
        return self.editor

    def _record(self, chosen: list[Item], action: str, intent: str | None, who: str) -> dt.datetime:
        now = utcnow()
        try:
            with self.store.tx(write=True) as s:
                s.add_all([ReviewDecision(message_id=i.id, action=action, intent=intent, who=who, at=now)
                           for i in chosen])
        except ConflictError:
            raise ConflictError("some of these messages were decided meanwhile by someone else; "
                                "read the queue again") from None
        finally:
            with self._lock:
                self._last = None
        return now
