"""The routing decision: one pure function from the evidence about a message to what the bot does.

`decide(evidence, thresholds)` returns the decision and the session's next state. The evidence is everything the
engine gathered: the message's ranking in the conversation and on its own, its questions' rankings when it asks
several, the rule that fired and the triggers taken back, the message read joined to the previous one when it
may lean on it, its form, and the session's state. A follow-up the message alone leaves open (an answer or a
handoff as sure as an answer must be does not: 要自己装吗 after a courier question) is decided on that joined
reading when it is clear, else on the mean of the two; not when it reads on its own as another entry of the
chat's family (sf可以吗 after a postage question) or is a yes/no question of its own (要打孔吗): joined, those
would only repeat the previous answer. A message goes to a person for what it says: human mass only the
conversation brings leaves the choice to the FAQ entries, and a question that goes to a person on its own and
has nothing of the chat's entry in its reading goes to one (OFF_TOPIC_HUMAN).
Bands (thresholds come from training's risk-coverage curve, or config: bot.dialogue.thresholds):
- answer: the best FAQ entry is sure enough and clear of the runner-up;
- suggest: unsure, but a few FAQ entries together are likely: offer them as quick replies (in a
  chat, whenever they are plausible at all: between an answer and a handoff there is a conversation); in a chat
  not handed off, the two likeliest, of one family and together as likely as an answer must be (退货条件 / 怎么退),
  are both answered, as a person would;
- clarify: ask to rephrase; for a lone message (`kefu predict`, `kefu eval`), which has no next turn,
  a clarification is a handoff, and in a chat the third unsure turn in a row hands off
  (`repeated_fallback`);
- handoff: a rule fired, or the human.* entries together are likely (in a chat: clearly win); checked before
  answering, however sure the best FAQ entry looks.
A closing (an acknowledgement that asks nothing: 好 那我拍两个) the bot would otherwise be unsure of, with no FAQ
entry likely, is answered as one (`CLOSING`), never handed off as a third unsure turn, nor read joined to the
question it closes; after the chat's first question (好 等你们消息 after an answer or a handoff) it is answered as
one whatever human mass its words carry. After a handoff for a problem with the goods, an exchange (换个新的给我)
is that problem's remedy: the person's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from bot.dialogue.results import INTENT_REASON, REASON_INTENT, Reason
from bot.dialogue.thresholds import Thresholds
from bot.language.model import IntentPrediction

log = logging.getLogger(__name__)


# Small talk costs nothing when wrong, and quick replies titled 谢谢 would be silly: a clear
# favourite is answered at this probability, below the FAQ threshold.
SMALLTALK_ANSWER = 0.5
# The entry that answers a closing (好 那我拍两个, 算了 先不买了) the bot is unsure of: its words pull
# towards the entries they come with, but it asks nothing. Only while no FAQ entry is likely (below
# CLOSING_BELOW): 算了 不要了 with returns.cancel at 0.7 may be a cancellation, and is offered as one.
CLOSING = "smalltalk.thanks"
CLOSING_BELOW = 0.5
REMEDY = "returns.exchange"  # after a problem with the goods, the person's remedy (换个新的给我), not a size's


# In a chat, quick replies are offered when the top entries together reach this: between an answer
# and a handoff there is a conversation. A third unsure turn in a row goes to a person.
CHAT_SUGGEST = 0.3
MAX_UNSURE_TURNS = 2
# A chat's first question (nothing before it but small talk) has no topic to lean on, and a later yes/no question
# of its own (要打孔吗) is no fragment: when the bot is unsure and the human entries are its likeliest reading (the
# later question's own) by far (at least FIRST_HUMAN of the chat's handoff mass `human_chat`, and FIRST_LEAD times
# the best FAQ entry: 零食保质期多长, 窗帘能定做尺寸吗), it goes to a person: the conversation would not resolve it.
FIRST_HUMAN = 0.7
FIRST_LEAD = 1.5
# In a chat about an FAQ entry, a message that goes to a person on its own reading at this human mass, and gives the
# chat's entry no weight there (not among its likeliest readings), is a new question for a person (能上门维修吗 after
# 退货运费谁出), whatever the conversation's readings lean to.
OFF_TOPIC_HUMAN = 0.6


@dataclass(frozen=True)
class SessionState:
    """What the policy needs to know about the conversation so far."""

    fallbacks: int = 0  # consecutive unsure turns (quick replies offered, or a request to rephrase)
    last_intent: str | None = None  # the entry the conversation is about: last answered, or offered first
    last_text: str | None = None  # the shopper's previous message


@dataclass(frozen=True)
class Evidence:
    """What the engine knows about one message when the policy decides."""

    text: str  # normalised; empty when the message had nothing to classify (only emoji or symbols)
    ranking: list[IntentPrediction]
    clauses: list[list[IntentPrediction]] = field(default_factory=list)  # one per question when it asks several
    rule: Reason | None = None  # a rule that never fails fired
    context: list[IntentPrediction] | None = None  # the message read with the previous one (a follow-up)
    state: SessionState = SessionState()
    lone: bool = False  # a message on its own, with no conversation to continue
    taken_back: frozenset[Reason] = frozenset()  # triggers the shopper took back (不用转人工, 不是要投诉)
    alone: list[IntentPrediction] | None = None  # the message read on its own, without the conversation
    closing: bool = False  # it acknowledges and asks nothing (好 那我拍两个: bot.language.forms)
    own_question: bool = False  # a yes/no question of its own, no fragment (要打孔吗: bot.language.forms)


@dataclass(frozen=True)
class Decision:
    """The policy's verdict for one message."""

    action: str  # answer | suggest | clarify | handoff
    intent: str | None
    confidence: float
    reason: Reason | None = None
    suggestions: list[IntentPrediction] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)  # every entry answered (a message of several questions)
    ranking: list[IntentPrediction] = field(default_factory=list)  # the ranking the decision rests on

    @property
    def route(self) -> str:
        return "human" if self.action == "handoff" else "faq"


def decide(ev: Evidence, th: Thresholds) -> tuple[Decision, SessionState]:
    """What to do with the message, and the session's state after it."""
    d = _decide(ev, th)
    if ev.lone and d.action == "clarify":  # no next turn to clarify in
        d = replace(d, action="handoff", intent=REASON_INTENT[Reason.LOW_CONFIDENCE], reason=Reason.LOW_CONFIDENCE)
    fallbacks = ev.state.fallbacks + 1 if d.action in ("clarify", "suggest") else 0
    # What the chat is about: the entry answered or offered first, or the one it was handed off for
    # (what the shopper adds about a broken item goes on being the person's while they wait).
    about = d.intent if d.action in ("answer", "suggest", "handoff") and d.intent else ev.state.last_intent
    if (ev.state.last_intent or "").startswith("human.") and str(about).startswith("smalltalk."):
        about = ev.state.last_intent  # 好 等你们消息 while a person is coming: the chat is still theirs
    return d, SessionState(fallbacks=fallbacks, last_intent=about)


def _decide(ev: Evidence, th: Thresholds) -> Decision:
    fallbacks, chat = ev.state.fallbacks, not ev.lone
    if not ev.text:  # nothing to classify: ask, or hand off when asked before
        if fallbacks >= (MAX_UNSURE_TURNS if chat else 1):
            return Decision("handoff", "human.other", 0.0, Reason.REPEATED_FALLBACK)
        return Decision("clarify", None, 0.0, Reason.LOW_CONFIDENCE)
    ranking, alone = without(ev.ranking, ev.taken_back), without(ev.alone or ev.ranking, ev.taken_back)
    about = ev.state.last_intent or ""  # the entry the chat is about
    first, handed = about == "" or about.startswith("smalltalk."), about.startswith("human.")  # handed: a person's
    d = one_ranking(ranking, th, rule=ev.rule, fallbacks=fallbacks, chat=chat)
    sure = d.confidence >= th.answer and (d.action == "answer" or d.reason in INTENT_REASON.values())  # human mass
    if chat and not sure and ev.rule is None and not ev.closing and not first and not handed \
            and human_mass(alone) >= OFF_TOPIC_HUMAN and about not in {p.intent for p in alone}:
        return _to_person(alone)
    # A follow-up left open; not another entry of the chat's family (_new_aspect), nor a question of its own (要打孔吗).
    if not sure and ev.rule is None and ev.context is not None and not ev.closing and not _new_aspect(alone, about) \
            and not ev.own_question:
        joined = without(ev.context, ev.taken_back)
        with_context = one_ranking(joined, th, fallbacks=fallbacks, chat=chat)
        if d.action != "answer" and with_context.action == "answer":  # clear with the topic it continues
            d = with_context
        else:  # both unsure (or only small talk's lower bar): the two readings together
            d = one_ranking(mean_ranking(ranking, joined), th, fallbacks=fallbacks, chat=chat)
    if d.action == "handoff" and chat and ev.rule is None and d.reason is not Reason.REPEATED_FALLBACK \
            and not handed and ev.alone is not None and human_mass(alone) < th.human_chat:
        # Human mass only the conversation brings (黑色呢 joined to a question not handed off) leaves the
        # choice to the FAQ entries; after a handoff the conversation is the person's (还是不行, broken goods).
        d = one_ranking(without(d.ranking, frozenset({Reason.REQUESTED})), th, fallbacks=fallbacks, chat=chat)
    if about == "human.problem" and ev.rule is None and d.action != "handoff" and d.intent == REMEDY:
        return Decision("handoff", "human.problem", d.confidence, Reason.PROBLEM, ranking=d.ranking)
    unsure = d.action in ("suggest", "clarify") or d.reason is Reason.REPEATED_FALLBACK
    if chat and (first or (ev.own_question and not handed)) and unsure and ev.rule is None and not ev.closing:
        read = ranking if first else alone
        if (p_human := human_mass(read)) >= FIRST_HUMAN * th.human_chat and p_human >= FIRST_LEAD * _best_faq(read):
            return _to_person(read)
    # After an answer or a handoff, a closing (好 等你们消息) asks for no person, whatever its words weigh.
    if ev.closing and ev.rule is None and (unsure or (not first and d.action == "handoff")) \
            and _best_faq(d.ranking) < CLOSING_BELOW:
        return Decision("answer", CLOSING, d.confidence, ranking=d.ranking, intents=[CLOSING])
    if chat and not handed and d.action == "suggest" and (pair := _pair(d.suggestions, th)):  # 退货条件 / 怎么退
        d = replace(d, action="answer", confidence=sum(p.confidence for p in pair), intents=[p.intent for p in pair],
                    reason=Reason.LOW_CONFIDENCE)  # neither sure alone: the review queue shows it
    if d.action == "handoff":
        return d
    clauses = [without(r, ev.taken_back) for r in ev.clauses]
    extra = _other_questions(clauses, th, d.intent if d.action == "answer" else None)
    if extra and d.action != "answer":  # the whole is unclear but its parts are not
        d, extra = Decision("answer", extra[0].intent, extra[0].confidence, ranking=d.ranking), extra[1:]
    if d.action == "answer":
        d = replace(d, intents=(d.intents or [str(d.intent)]) + [p.intent for p in extra if p.intent not in d.intents])
    return d


def _to_person(ranking: list[IntentPrediction]) -> Decision:
    """A handoff for the likeliest human entry of a ranking (it has one), at the human entries' mass."""
    best = next(p for p in ranking if p.intent.startswith("human."))
    return Decision("handoff", best.intent, human_mass(ranking), INTENT_REASON.get(best.intent, Reason.OUT_OF_SCOPE),
                    ranking=ranking)


def _pair(options: list[IntentPrediction], th: Thresholds) -> list[IntentPrediction]:
    """The two likeliest entries offered, when they are of one family and together as likely as an answer must be."""
    families = {p.intent.split(".")[0] for p in options[:2]}
    return options[:2] if len(options) > 1 and len(families) == 1 and "smalltalk" not in families \
        and sum(p.confidence for p in options[:2]) >= th.answer else []


def _new_aspect(alone: list[IntentPrediction], about: str) -> bool:
    """Whether the message on its own (`alone`) reads as another entry of the family the chat is about (sf可以吗
    after 运费多少: the courier; 在哪申请 after 还能退吗: how to return): it asks about that, and the joined reading,
    which rereads the previous question, would only repeat the previous answer."""
    own = alone[0].intent
    return own != about and not own.startswith(("human.", "smalltalk.")) and own.split(".")[0] == about.split(".")[0]


def without(ranking: list[IntentPrediction], reasons: frozenset[Reason]) -> list[IntentPrediction]:
    """The ranking without the human entries of triggers the shopper took back, the rest renormalised: in 不用转人工
    the classifier reads 转人工 as loudly as anyone, and the shopper said no. A shopper who said they want no person
    (不需要人工 你直接告诉我...) asks the bot: no human entry is kept (a rule still hands off)."""
    dropped = {REASON_INTENT[r] for r in reasons}
    no_person = Reason.REQUESTED in reasons
    kept = [p for p in ranking if p.intent not in dropped and not (no_person and p.intent.startswith("human."))]
    if len(kept) == len(ranking) or not kept:
        return ranking
    mass = 1.0 - sum(p.confidence for p in ranking if p not in kept)  # the rest of the whole distribution
    return [IntentPrediction(p.intent, p.confidence / mass) for p in kept] if mass > 0 else kept


def _best_faq(ranking: list[IntentPrediction]) -> float:
    return max((p.confidence for p in ranking if not p.intent.startswith(("human.", "smalltalk."))), default=0.0)


def human_mass(ranking: list[IntentPrediction]) -> float:
    return sum(p.confidence for p in ranking if p.intent.startswith("human."))


def mean_ranking(a: list[IntentPrediction], b: list[IntentPrediction]) -> list[IntentPrediction]:
    """The mean of two readings of a message (entries missing from one count 0 there), best first."""
    mass: dict[str, float] = {}
    for p in [*a, *b]:
        mass[p.intent] = mass.get(p.intent, 0.0) + p.confidence / 2
    return sorted((IntentPrediction(i, c) for i, c in mass.items()), key=lambda p: -p.confidence)


def one_ranking(ranking: list[IntentPrediction], th: Thresholds, *, rule: Reason | None = None,
                fallbacks: int = 0, chat: bool = False) -> Decision:
    """The decision for one ranking alone (`chat`: a turn of a conversation, not a lone message)."""
    top = ranking[0]
    if rule is not None:
        return Decision("handoff", REASON_INTENT[rule], top.confidence, rule, ranking=ranking)
    human = [p for p in ranking if p.intent.startswith("human.")]
    faq = [p for p in ranking if not p.intent.startswith("human.")]
    p_human = human_mass(ranking)
    if human and p_human >= (th.human_chat if chat else th.human):
        log.info("handoff: human mass %.2f, best %s %.2f", p_human, human[0].intent, human[0].confidence)
        return _to_person(ranking)
    if not faq:  # every entry ranked is a person's (a catalogue of many human.* entries), yet none is likely
        return _unsure(ranking, None, fallbacks, chat)
    best, second = faq[0], faq[1] if len(faq) > 1 else IntentPrediction("", 0.0)
    clear = best.confidence - second.confidence >= th.margin
    if clear and (best.confidence >= th.answer
                  or (best.intent.startswith("smalltalk.") and best.confidence >= SMALLTALK_ANSWER)):
        return Decision("answer", best.intent, best.confidence, ranking=ranking)
    options = faq[: th.suggest_k]
    if fallbacks < (MAX_UNSURE_TURNS if chat else 1) \
            and sum(p.confidence for p in options) >= (CHAT_SUGGEST if chat else th.suggest):
        log.info("suggest: %s", [(p.intent, round(p.confidence, 2)) for p in options])
        return Decision("suggest", best.intent, best.confidence, suggestions=options, ranking=ranking)
    return _unsure(ranking, best, fallbacks, chat)


def _unsure(ranking: list[IntentPrediction], best: IntentPrediction | None, fallbacks: int, chat: bool) -> Decision:
    """Neither an answer nor quick replies (`best`: the likeliest FAQ entry, if any was ranked): ask to
    rephrase, or hand off when asked before."""
    intent, confidence = (best.intent, best.confidence) if best is not None else (None, 0.0)
    if fallbacks >= (MAX_UNSURE_TURNS if chat else 1):
        return Decision("handoff", "human.other", confidence, Reason.REPEATED_FALLBACK, ranking=ranking)
    log.info("clarify: best %s %.2f", intent, confidence)
    return Decision("clarify", intent, confidence, Reason.LOW_CONFIDENCE, ranking=ranking)


def _other_questions(rankings: list[list[IntentPrediction]], th: Thresholds,
                     answered: str | None) -> list[IntentPrediction]:
    """Confident FAQ entries of the message's questions, in order, without repeats or small talk."""
    found: list[IntentPrediction] = []
    seen = {answered}
    for ranking in rankings:
        d = one_ranking(ranking, th)
        if d.action == "answer" and d.intent not in seen and not str(d.intent).startswith("smalltalk."):
            seen.add(d.intent)
            found.append(IntentPrediction(str(d.intent), d.confidence))
    return found
