"""The engine: normalise -> rules -> classify -> policy -> answer | handoff.

`Bot.predict` is stateless (the CLI's `predict` and `eval`); `Bot.reply` takes the session's
state so that follow-ups ("那退货呢") and repeated fallbacks are seen. A message with several
questions ("什么时候发货？包邮吗") gets each confident one answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot import rules
from bot.answers import personalised, reply_text
from bot.knowledge import KnowledgeBase
from bot.model import Model
from bot.normalize import check_text, normalize
from bot.policy import REASON_INTENT, Decision, Reason, Thresholds, decide
from bot.results import BotReply, IntentPrediction

MAX_CHARS = 1000
TOP_K = 5
MAX_CLAUSES = 4
# Clause boundaries for several questions in one message.
_CLAUSES = re.compile(r"[?？!！。;；\n]+|[,，]\s*(?=还有|另外|顺便|再问|然后|那)|\s+(?=还有|另外|顺便)")
# A short message that leans on the previous turn: 那退货呢, 运费呢, 顺丰呢?
_ELLIPTICAL = re.compile(r"^(那|那么|还有|然后|再问下?)?.{1,8}(呢|咧|嘞)[?!.]?$|^(那|那么).{1,10}$")


@dataclass(frozen=True)
class SessionState:
    """What the engine needs to know about the conversation so far."""

    fallbacks: int = 0  # consecutive clarify/suggest turns
    last_intent: str | None = None
    last_text: str | None = None  # the shopper's previous message


def check_message(text: object) -> str:
    """Validate a raw message; InvalidInputError explains what is wrong."""
    return check_text(text, what="message", max_chars=MAX_CHARS)


class Bot:
    """A knowledge base, a model and thresholds: everything needed to answer one message."""

    def __init__(self, kb: KnowledgeBase, model: Model, thresholds: Thresholds | None = None) -> None:
        self.kb = kb
        self.model = model
        self.thresholds = thresholds or thresholds_from(model)
        self._titles = {i: e.title or i for i, e in kb.entries.items()}

    def rank(self, text: str) -> list[IntentPrediction]:
        return self.model.rank(text, TOP_K)

    def reply(self, text: str, state: SessionState | None = None) -> BotReply:
        """Answer one message in a conversation."""
        state = state or SessionState()
        check_message(text)
        norm = normalize(text)
        if not norm:  # only emoji or symbols: nothing to classify, ask (or hand off the second time)
            d = (Decision("handoff", "human.other", 0.0, Reason.REPEATED_FALLBACK) if state.fallbacks
                 else Decision("clarify", None, 0.0, Reason.LOW_CONFIDENCE))
            return self._render(d, [], norm)
        hit = rules.match(norm)
        # The message and, when it asks several things, each of its clauses: one batch.
        clauses = self._clauses(norm)
        ranking, *clause_rankings = self.model.rank_many([text, *clauses], TOP_K)
        d = decide(ranking, self.thresholds, rule=hit[0] if hit else None, fallbacks=state.fallbacks)
        if d.action != "answer" and hit is None and state.last_text and _ELLIPTICAL.match(norm):
            ranking2 = self.rank(f"{state.last_text}，{text}")
            d2 = decide(ranking2, self.thresholds, fallbacks=state.fallbacks)
            if d2.action == "answer":
                d, ranking = d2, ranking2
        if d.action == "handoff":
            return self._render(d, ranking, norm)
        extra = self._other_questions(clause_rankings, d.intent if d.action == "answer" else None)
        if extra and d.action != "answer":  # the whole is unclear but its parts are not
            d, extra = Decision("answer", extra[0].intent, extra[0].confidence), extra[1:]
        return self._render(d, ranking, norm, extra)

    def predict(self, text: str) -> BotReply:
        """One message on its own: a fallback the bot would clarify counts as low confidence."""
        reply = self.reply(text, SessionState())
        if reply.action == "clarify":
            return self._render(Decision("handoff", REASON_INTENT[Reason.LOW_CONFIDENCE], reply.confidence,
                                         Reason.LOW_CONFIDENCE), reply.ranking, "")
        return reply

    @staticmethod
    def _clauses(norm: str) -> list[str]:
        """The questions of a message that asks several (none for a single question)."""
        clauses = [c.strip() for c in _CLAUSES.split(norm) if c and len(c.strip()) >= 2][:MAX_CLAUSES]
        return clauses if len(clauses) >= 2 else []

    def _other_questions(self, rankings: list[list[IntentPrediction]], answered: str | None) -> list[IntentPrediction]:
        """Confident FAQ entries of the message's clauses, in order, without repeats."""
        found: list[IntentPrediction] = []
        seen = {answered}
        for ranking in rankings:
            d = decide(ranking, self.thresholds)
            if d.action == "answer" and d.intent not in seen and not str(d.intent).startswith("smalltalk."):
                seen.add(d.intent)
                found.append(IntentPrediction(str(d.intent), d.confidence))
        return found

    def answer_text(self, intent: str, norm: str) -> str:
        return personalised(self.kb, intent, norm) or self.kb.answer(intent)

    def _render(self, d: Decision, ranking: list[IntentPrediction], norm: str,
                extra: list[IntentPrediction] | None = None) -> BotReply:
        reason = d.reason.value if d.reason else None
        if d.action == "handoff":
            text = self.kb.answer(str(d.intent)) if d.intent in self.kb.entries else reply_text(self.kb, "clarify")
            return BotReply("human", "handoff", d.intent, d.confidence, text, reason, ranking=ranking,
                            intents=[str(d.intent)])
        if d.action == "answer":
            intents = [str(d.intent)] + [p.intent for p in extra or []]
            text = "\n".join(self.answer_text(i, norm) for i in intents)
            return BotReply("faq", "answer", d.intent, d.confidence, text, None, ranking=ranking, intents=intents)
        if d.action == "suggest":
            chips = [{"intent": p.intent, "title": self._titles.get(p.intent, p.intent)} for p in d.suggestions]
            return BotReply("faq", "suggest", d.intent, d.confidence, reply_text(self.kb, "suggest"), None, chips,
                            ranking)
        return BotReply("faq", "clarify", d.intent, d.confidence, reply_text(self.kb, "clarify"), reason,
                        ranking=ranking)


def thresholds_from(model: Model) -> Thresholds:
    """The thresholds training chose, falling back to the defaults."""
    values = model.metadata.get("thresholds") or {}
    known = {k: v for k, v in values.items() if k in Thresholds.__dataclass_fields__}
    return Thresholds(**known)
