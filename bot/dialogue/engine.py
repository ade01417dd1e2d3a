"""The engine: gather the evidence about a message, let the policy decide, say it in the shop's voice.

normalise (once) -> rules -> the question (after a denial, 没想退货 就问问X reads X) -> rank the message
and its questions (one batch) in the conversation: after the entry it is about and joined to the
shopper's previous message (its question, after a denial), weighed by the model (training/context.py),
and on its own; a short follow-up also as that joined text -> policy.decide -> the answer, quick
replies, a request to rephrase or a handoff. `Bot.reply` takes the session's state so that follow-ups
("那退货呢") and repeated fallbacks are seen; `Bot.predict` is a message on its own (the CLI's predict
and eval).
"""

from __future__ import annotations

import re

from bot.dialogue import rules
from bot.dialogue.answers import personalised
from bot.dialogue.knowledge import KnowledgeBase
from bot.dialogue.policy import CLOSING, Decision, Evidence, SessionState, decide
from bot.dialogue.results import Reply
from bot.dialogue.thresholds import Thresholds
from bot.dialogue.voice import say
from bot.language.forms import closing, own_question
from bot.language.model import IntentPrediction, Model
from bot.language.normalize import check_text, normalize

MAX_CHARS = 1000
TOP_K = 5
MAX_CLAUSES = 4
# Clause boundaries for several questions in one message.
_CLAUSES = re.compile(r"[?？!！。;；\n]+|[,，]\s*(?=还有|另外|顺便|再问|然后|那)|\s+(?=还有|另外|顺便)")
# A message that may lean on the previous turn: short (几天能开好, 贵多少, 39呢), or of the 那…呢 form.
# Besides the model's reading in the conversation, the policy gets its ranking as the joined text,
# to decide on when the message alone leaves it open (measured on the conversations of
# data/dialogues: the length, the forms).
FOLLOW_UP_CHARS = 8
_ELLIPTICAL = re.compile(r"^.{1," + str(FOLLOW_UP_CHARS) + r"}$"
                         r"|^(那|那么|还有|然后|再问下?)?.{1,8}(呢|咧|嘞)[?!.]?$|^(那|那么).{1,10}$")


# "I don't want a return, I only ask when it ships" (没想退货哈 就问问一般几天能发, 不是要投诉 就想知道…,
# 不需要人工 你就告诉我…): a head that denies something, then a marker of the one question asked. The rules read
# the whole message (a trigger taken back, or one that still fires); the ranking reads the question, so
# the topic denied (退货) does not pull it away.
# A denial of what the shopper wants (不是要, 没想, 不用, 别), not a fact said with its topic (没有发票 我想问下
# 怎么开 asks about the invoice) nor a want gone (不要了 我想问下怎么退款 is a cancellation).
_DISCLAIMER = re.compile(r"(?:不是|不想|不要|不用|不需要|没想|没打算|不打算|没要|并非|别)(?![了的])")
_ONLY_ASKING = re.compile(r"(?:(?:我|就|只|只是|就是|我就|我只|单纯)(?:想|是想)?"
                          r"(?:问问|问下|问一下|问个|问|咨询下?|了解下|知道)"
                          r"|(?:你|您)?(?:就|只要|直接)(?:告诉我|说下?|回答下?))\s*")


def asked(norm: str) -> str:
    """The question of a message that first denies something (没想退货 就问问X: X), else the message."""
    found = _ONLY_ASKING.search(norm)
    if found is None or found.start() == 0 or not _DISCLAIMER.search(norm[: found.start()]):
        return norm
    question = norm[found.end():].strip()
    return question if len(question) >= 2 else norm


def check_message(text: object) -> str:
    """Validate a raw message; InvalidInputError explains what is wrong."""
    return check_text(text, what="message", max_chars=MAX_CHARS)


class Bot:
    """A knowledge base, a model and thresholds: everything needed to answer one message."""

    def __init__(self, kb: KnowledgeBase, model: Model, thresholds: Thresholds) -> None:
        self.kb = kb
        self.model = model
        self.thresholds = thresholds
        self._titles = {i: e.title or i for i, e in kb.entries.items()}

    def rank(self, text: str) -> list[IntentPrediction]:
        """The model's ranking of a raw message."""
        return self.model.rank(normalize(text), TOP_K)

    def turn(self, text: str, state: SessionState) -> tuple[Reply, SessionState]:
        """Answer one message of a conversation; the session's state after it."""
        d, after, norm = self.decide(text, state)
        return self._render(d, norm), after

    def reply(self, text: str, state: SessionState | None = None) -> Reply:
        """Answer one message in a conversation (its state decides follow-ups and fallbacks)."""
        return self.turn(text, state or SessionState())[0]

    def predict(self, text: str) -> Reply:
        """One message on its own: a fallback the bot would clarify counts as low confidence."""
        d, _, norm = self.decide(text, SessionState(), lone=True)
        return self._render(d, norm)

    def decide(self, text: str, state: SessionState, lone: bool = False) -> tuple[Decision, SessionState, str]:
        """The policy's decision, the session's next state, and the normalised text."""
        check_message(text)
        norm = normalize(text)
        if not norm:  # only emoji or symbols: nothing to classify
            return (*decide(Evidence(norm, [], state=state, lone=lone), self.thresholds), norm)
        hit, taken_back = rules.read(norm)
        question = asked(norm)
        clauses = self._clauses(question)
        # Every text is read after the entry the conversation is about (none for a first message), and the
        # message also joined to the shopper's previous one: the model weighs the two (training/context.py).
        # The previous message joins as its question too (不要转人工 我就问下有半码吗 joins as 有半码吗).
        joined = normalize(f"{asked(normalize(state.last_text))}，{question}") \
            if state.last_text is not None and hit is None else None
        # A message that may lean on the previous turn is also ranked as that joined text, for the policy
        # to fall back on when the message alone leaves it open.
        follow_up = joined is not None and _ELLIPTICAL.match(question) is not None
        texts = [question, *clauses] + ([joined] if joined is not None and follow_up else [])
        (ranking, *rest), (alone, *_) = self.model.rank_read(texts, TOP_K, [state.last_intent] * len(texts),
                                                             [joined] + [None] * (len(texts) - 1))
        context = rest.pop() if follow_up else None
        evidence = Evidence(norm, ranking, clauses=rest, rule=hit[0] if hit else None, context=context,
                            state=state, lone=lone, taken_back=taken_back, alone=alone,
                            closing=CLOSING in self.kb.entries and closing(norm), own_question=own_question(question))
        return (*decide(evidence, self.thresholds), norm)

    @staticmethod
    def _clauses(norm: str) -> list[str]:
        """The questions of a message that asks several (none for a single question)."""
        clauses = [c.strip() for c in _CLAUSES.split(norm) if c and len(c.strip()) >= 2][:MAX_CLAUSES]
        return clauses if len(clauses) >= 2 else []

    def answer_text(self, intent: str, norm: str) -> str:
        return personalised(self.kb, intent, norm) or self.kb.answer(intent)

    def _render(self, d: Decision, norm: str) -> Reply:
        reason = d.reason.value if d.reason else None
        if d.action == "handoff":
            text = self.kb.answer(str(d.intent)) if d.intent in self.kb.entries else say(self.kb.shop, "clarify")
            return Reply("human", "handoff", d.intent, d.confidence, text, reason, ranking=d.ranking,
                         intents=[str(d.intent)])
        if d.action == "answer":
            text = "\n".join(self.answer_text(i, norm) for i in d.intents)
            return Reply("faq", "answer", d.intent, d.confidence, text, reason, ranking=d.ranking,
                         intents=list(d.intents))
        if d.action == "suggest":
            chips = [{"intent": p.intent, "title": self._titles.get(p.intent, p.intent)} for p in d.suggestions]
            return Reply("faq", "suggest", d.intent, d.confidence, say(self.kb.shop, "suggest"), suggestions=chips,
                         ranking=d.ranking)
        return Reply("faq", "clarify", d.intent, d.confidence, say(self.kb.shop, "clarify"), reason,
                     ranking=d.ranking)

