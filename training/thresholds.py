"""Choose the policy's thresholds from out-of-fold probabilities (a risk-coverage curve).

The simulation follows bot.dialogue.policy.decide: hand off when a rule fires on the message
(bot.dialogue.rules: they run before the classifier, whatever it says) or when the human entries
together reach `human`; answer when the best FAQ entry reaches `answer` and leads the runner-up by `margin`;
offer the top three FAQ entries as quick replies when together they reach `suggest`; otherwise
ask to rephrase (which, for a lone message, counts as a handoff).

The human mass that hands off (`human`, and `human_chat` in a chat) is chosen first, from the FAQ
examples alone: the lowest at which at most MAX_FAQ_HANDOFF of them would go to a person for it. The
rules, which only add handoffs of messages for a person, cannot move it: chosen jointly with the
rest, a dozen more ruled examples tipped a recall floor and took it from 0.4 to 0.3 (and the chat's
from 0.5 to 0.35), handing off answerable questions the shop's figures then counted.

Risk is the share of answered messages whose answer is wrong (a wrong FAQ entry, or an answer
to a message that needed a person); coverage is the share of FAQ messages answered. The chosen
point keeps risk at or under the target and the recall of human messages at or above
MIN_HUMAN_RECALL; among those it answers the most FAQ messages, then keeps the most with the
bot (answered, or offered the right entry among quick replies). Floors stop thin data from making the bot reckless.
The recall is read to two decimals, as the coverage is: missed by one of about a thousand examples for
a person (939 of 1,021 kept from the bot where 940 make 0.92), the floor once pushed quick replies from
0.6 to 0.7, and lone messages (`kefu eval`) then handed off twice as many answerable questions (the real
set's 0.038 to 0.080).
"""

from __future__ import annotations

import numpy as np

ANSWER_GRID = np.round(np.arange(0.40, 0.96, 0.05), 2)
MARGIN_GRID = (0.05, 0.1, 0.15, 0.2)
SUGGEST_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)
MIN_HUMAN_RECALL = 0.92
MIN_SUGGEST_PRECISION = 0.9  # quick replies must usually contain what the shopper meant
SUGGEST_K = 3
HUMAN_GRID = np.round(np.arange(0.30, 0.91, 0.05), 2)
# FAQ examples (out of fold) the human mass alone may send to a person. The rest of a person's
# messages are caught by the rules, by quick replies that do not fit (a third unsure turn hands off)
# and, in a lone message, by the bot being unsure at all.
MAX_FAQ_HANDOFF = 0.01


class _Rows:
    """Per-row quantities the grid reuses."""

    def __init__(self, labels: list[str], probs: np.ndarray, classes: list[str],
                 ruled: np.ndarray | None = None) -> None:
        is_human_col = np.array([c.startswith("human.") for c in classes])
        self.ruled = np.zeros(len(labels), dtype=bool) if ruled is None else np.asarray(ruled, dtype=bool)
        self.gold_human = np.array([lab.startswith("human.") for lab in labels])
        self.p_human = probs[:, is_human_col].sum(1)
        faq_probs = np.where(is_human_col[None, :], -1.0, probs)
        order = np.argsort(-faq_probs, axis=1)
        rows = np.arange(len(labels))
        self.best = faq_probs[rows, order[:, 0]]
        self.second = faq_probs[rows, order[:, 1]]
        self.topk = np.clip(faq_probs[rows[:, None], order[:, :SUGGEST_K]], 0, None).sum(1)
        names = np.array(classes)
        gold = np.array(labels)
        self.best_ok = names[order[:, 0]] == gold
        self.topk_ok = (names[order[:, :SUGGEST_K]] == gold[:, None]).any(1)
        self.n_faq = max(int((~self.gold_human).sum()), 1)
        self.n_human = max(int(self.gold_human.sum()), 1)


def _point(r: _Rows, answer: float, margin: float, human: float, suggest: float) -> dict[str, float]:
    handoff = r.ruled | (r.p_human >= human)
    answered = ~handoff & (r.best >= answer) & (r.best - r.second >= margin)
    suggested = ~handoff & ~answered & (r.topk >= suggest)
    kept_by_bot = answered | suggested
    wrong = answered & (r.gold_human | ~r.best_ok)
    faq = ~r.gold_human
    return {
        "answer": float(answer), "margin": float(margin), "human": float(human), "suggest": float(suggest),
        "coverage": float((answered & faq).sum() / r.n_faq),
        "risk": float(wrong.sum() / max(int(answered.sum()), 1)),
        "human_recall": float((~kept_by_bot & r.gold_human).sum() / r.n_human),
        "faq_handoff": float((~kept_by_bot & faq).sum() / r.n_faq),
        "suggested": float((suggested & faq).sum() / r.n_faq),
        "suggest_precision": float((suggested & r.topk_ok & faq).sum() / max(int(suggested.sum()), 1)),
        "kept": float(((answered & r.best_ok) | (suggested & r.topk_ok))[faq].sum() / r.n_faq),
    }


def simulate(labels: list[str], probs: np.ndarray, classes: list[str], answer: float, margin: float,
             human: float, suggest: float = 1.01, ruled: np.ndarray | None = None) -> dict[str, float]:
    """The policy's rates on every row for one set of thresholds (`ruled`: rows a rule hands off)."""
    return _point(_Rows(labels, probs, classes, ruled), answer, margin, human, suggest)


def ruled_rows(texts: list[str]) -> np.ndarray:
    """Which messages a rule hands off before the classifier is asked."""
    from bot.dialogue import rules
    from bot.language.normalize import normalize

    return np.array([rules.match(normalize(t)) is not None for t in texts], dtype=bool)


def _choose_human(r: _Rows) -> float:
    """The lowest human mass on HUMAN_GRID at which at most MAX_FAQ_HANDOFF of the FAQ examples
    would go to a person (out of fold); the grid's top when none is that low."""
    faq = ~r.gold_human
    if not faq.any():
        return float(HUMAN_GRID[-1])
    return next((float(h) for h in HUMAN_GRID if (r.p_human >= h)[faq].mean() <= MAX_FAQ_HANDOFF),
                float(HUMAN_GRID[-1]))


def choose_thresholds(labels: list[str], probs: np.ndarray, classes: list[str], *, target_risk: float = 0.02,
                      ruled: np.ndarray | None = None) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Return the chosen thresholds and the risk-coverage curve behind them (`ruled`: rows a rule
    hands off, ruled_rows(texts))."""
    rows = _Rows(labels, probs, classes, ruled)
    human = _choose_human(rows)
    points = [_point(rows, a, m, human, s) for a in ANSWER_GRID for m in MARGIN_GRID for s in SUGGEST_GRID]
    ok = [p for p in points if p["risk"] <= target_risk and round(p["human_recall"], 2) >= MIN_HUMAN_RECALL
          and (p["suggested"] == 0 or p["suggest_precision"] >= MIN_SUGGEST_PRECISION)]
    if not ok:  # the data cannot meet the target: prefer safety (lowest risk, then recall)
        ok = sorted(points, key=lambda p: (round(p["risk"], 3), -p["human_recall"]))[:1]
    # Most answers first (quick replies are a second best), then most FAQ messages kept with the
    # bot, then the stricter thresholds.
    best = max(ok, key=lambda p: (round(p["coverage"], 2), round(p["kept"], 3), p["answer"], p["suggest"]))
    chosen = {k: best[k] for k in ("answer", "margin", "human", "suggest")}
    chosen["human_chat"] = human  # one bar for both: a chat's unsure turns are offered quick replies instead
    # The answer threshold's risk-coverage curve at the chosen margin and human threshold
    # (quick replies change neither risk nor coverage).
    curve = [_point(rows, a, best["margin"], best["human"], 1.01) for a in ANSWER_GRID]
    return chosen, curve
