"""The review queue on a real SQLite store, filled by real conversations with the trained bot."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.dialogue import knowledge
from bot.errors import ConflictError, InvalidInputError, NotFoundError
from bot.manage.editor import KnowledgeEditor
from bot.manage.grouping import Cluster, Item, group
from bot.manage.review import ReviewQueue
from bot.service.conversations import Conversations
from bot.service.schema import Message, ReviewDecision
from bot.service.store import Store
from tests.conftest import DATA, ROOT

# fmt: off
# Six shoppers ask, in their own words, whether the goods are genuine: the shop never taught it.
GENUINE = ["正品吗", "是正品吗", "保证正品吗", "是正品吧", "能保证是正品吗", "卖的都是正品吗"]
# Questions the shop never taught either, each about something else.
UNRELATED = ["你们店在哪个城市", "这个是什么材质"]
# A question the shop taught: the bot answers it.
TAUGHT = "可以货到付款吗"
# Paraphrases of questions a shop never taught, and unrelated questions: each set one group, the rest alone.
PARAPHRASES = {
    "genuine": ["正品吗", "是不是正品", "会不会是假货", "保证正品吗", "是正品吧", "有假货吗"],  # as the issue asks them
    "engraving": ["可以刻字吗", "能刻字吗", "能刻名字吗", "支持刻字吗", "可以定制刻字吗"],
    "shop": ["你们店在哪个城市", "实体店在哪", "店铺地址在哪里", "你们是哪里的店"],
    "fridge": ["能放冰箱吗", "可以冷藏吗", "要放冰箱保存吗"],
    "warranty": ["保修多久", "质保多长时间", "保修期是多久", "有保修吗"],
}
ALONE = ["可以货到付款吗", "什么时候发货", "能开发票吗", "有没有优惠券", "这个是什么材质", "多久能到", "有没有大码",
         "洗了会缩水吗", "会掉色吗", "包邮吗", "能写贺卡吗", "适合几岁", "孕妇能用吗", "有视频教程吗"]
# fmt: on


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'k.db'}")
    s.create_schema()
    return s


@pytest.fixture()
def conv(bot, store: Store) -> Conversations:  # type: ignore[no-untyped-def]
    return Conversations(lambda: bot, store)


@pytest.fixture()
def queue(bot, store: Store) -> ReviewQueue:  # type: ignore[no-untyped-def]
    return ReviewQueue(store, lambda: bot)


def ask_each(conv: Conversations, texts: list[str]) -> list[Any]:
    """Each text from a new shopper (a session of its own)."""
    return [conv.chat(None, t) for t in texts]


def texts_of(cluster: Cluster) -> set[str]:
    return {i.text for i in cluster.items}


def cluster_with(clusters: list[Cluster], text: str) -> Cluster:
    return next(c for c in clusters if text in texts_of(c))


def test_paraphrases_of_an_untaught_question_form_one_group(conv: Conversations, queue: ReviewQueue) -> None:
    # Given six shoppers asking whether the goods are genuine, two asking other new things, one a taught question
    replies = ask_each(conv, GENUINE + UNRELATED + [TAUGHT])
    assert [r.route for r in replies[:-1]] == ["human"] * 8, "the bot should not know these"
    assert (replies[-1].action, replies[-1].intent) == ("answer", "payment.cod")
    # When the manager opens the queue
    clusters = queue.clusters()
    # Then the six are one group, the biggest, first; the others stand alone; the taught one is absent
    assert texts_of(clusters[0]) == set(GENUINE) and clusters[0].size == 6
    assert [c.size for c in clusters] == [6, 1, 1]
    assert {t for c in clusters[1:] for t in texts_of(c)} == set(UNRELATED)
    assert all(i.source == "out_of_scope" and i.bot_guess == "human.other" for i in clusters[0].items)
    assert [i.id for i in clusters[0].items] == sorted((i.id for i in clusters[0].items), reverse=True)


def test_a_group_shows_when_and_the_entries_it_is_nearest_to(conv: Conversations, queue: ReviewQueue) -> None:
    ask_each(conv, GENUINE)
    [cluster] = [c.as_dict() for c in queue.clusters()]
    assert set(cluster) == {"id", "size", "messages", "suggested"}
    assert len(cluster["suggested"]) == 3 and cluster["suggested"][0]["intent"] == "human.other"
    scores = [s["score"] for s in cluster["suggested"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
    first = cluster["messages"][0]
    assert set(first) == {"id", "text", "at", "source", "bot_guess"}
    assert dt.datetime.fromisoformat(first["at"]).tzinfo is not None


def test_the_threshold_groups_paraphrases_and_keeps_other_questions_apart(bot) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    texts = [t for group_ in PARAPHRASES.values() for t in group_] + ALONE
    clusters = group([Item(n, t, now, "out_of_scope", "human.other") for n, t in enumerate(texts, 1)], bot.model)
    found = sorted(sorted(texts_of(c)) for c in clusters)
    assert found == sorted([sorted(g) for g in PARAPHRASES.values()] + [[t] for t in ALONE])
    assert texts_of(clusters[0]) == set(PARAPHRASES["genuine"])  # the biggest first


def test_without_an_embedding_character_ngrams_group_what_is_written_alike(bot) -> None:  # type: ignore[no-untyped-def]
    # A model trained with `--embedder none` has only TF-IDF blocks: the queue falls back to n-grams.
    no_embedding = SimpleNamespace(scorer=SimpleNamespace(blocks=[]), labels=bot.model.labels,
                                   probabilities=bot.model.probabilities)
    now = dt.datetime.now(dt.UTC)
    texts = ["可以刻字吗", "能刻字吗", "可以刻字不", "你们店在哪个城市", "发什么快递"]
    clusters = group([Item(n, t, now, "clarify", None) for n, t in enumerate(texts, 1)], no_embedding)  # type: ignore[arg-type]
    assert [sorted(texts_of(c)) for c in clusters] == [sorted(texts[:3]), [texts[4]], [texts[3]]]


def test_unsure_turns_are_in_the_queue_with_what_the_bot_did(conv: Conversations, queue: ReviewQueue) -> None:
    # Given messages the bot is unsure of: one alone, and a chat of three unsure turns (quick replies or
    # requests to rephrase, then, the third in a row, a person). What the bot makes of each depends on
    # the model; the queue must show exactly that.
    asked = conv.chat(None, "能放冰箱吗")
    first = conv.chat(None, "会不会很重")
    second = conv.chat(first.session_id, "xyz")
    third = conv.chat(first.session_id, "是真货吗")
    said = {"能放冰箱吗": asked, "会不会很重": first, "xyz": second, "是真货吗": third}
    expected = {}
    for text, out in said.items():
        if out.action in ("clarify", "suggest"):
            expected[text] = (out.action, out.intent)
        elif out.reason in ("low_confidence", "out_of_scope", "repeated_fallback"):
            expected[text] = (str(out.reason), out.intent)
    assert {source for source, _ in expected.values()} & {"clarify", "suggest"}, said
    assert len(expected) >= 3, said
    # Then each of them is in the queue, with what the bot did (or why it handed off)
    found = {i.text: (i.source, i.bot_guess) for c in queue.clusters() for i in c.items}
    assert found == expected


def test_a_message_with_nothing_to_read_is_left_out(conv: Conversations, queue: ReviewQueue) -> None:
    assert conv.chat(None, "😊😊").action == "clarify"
    assert queue.clusters() == []


def test_rules_and_sure_handoffs_are_not_in_the_queue_but_relabelled_ones_are(
        conv: Conversations, queue: ReviewQueue) -> None:
    # Given a request for a person an agent labelled as a shipping question, one labelled as asked,
    # and a problem the rule sent to a person
    asked, same, problem = ask_each(conv, ["转人工，我想问下什么时候发货", "转人工", "衣服破了个洞"])
    assert (asked.reason, same.reason, problem.reason) == ("requested", "requested", "problem")
    conv.resolve(asked.handoff["id"], "alice", "shipping.when", None)
    conv.resolve(same.handoff["id"], "alice", "human.request", None)
    # Then only the relabelled one is in the queue, with the agent's label beside the bot's guess
    [cluster] = queue.clusters()
    [item] = cluster.items
    assert (item.text, item.source, item.bot_guess, item.agent_label) == (
        "转人工，我想问下什么时候发货", "relabelled", "human.request", "shipping.when")
    assert item.as_dict()["agent_label"] == "shipping.when"


def test_dismissing_some_messages_records_who_and_when_and_keeps_the_rest(
        conv: Conversations, queue: ReviewQueue, store: Store) -> None:
    ask_each(conv, GENUINE)
    [cluster] = queue.clusters()
    two = [cluster.items[0].id, cluster.items[1].id]
    # When the manager dismisses two of the six
    before = dt.datetime.now(dt.UTC)
    out = queue.decide(cluster.id, "dismiss", "manager-li", message_ids=two)
    # Then they leave the queue; the rest is a group with a new id; the decision names who and when
    assert (out["action"], out["intent"], out["message_ids"], out["who"], out["retrain"]) == (
        "dismiss", None, two, "manager-li", False)
    [rest] = queue.clusters()
    assert rest.size == 4 and rest.id != cluster.id and not set(two) & {i.id for i in rest.items}
    with store.tx() as s:
        rows = list(s.scalars(select(ReviewDecision).order_by(ReviewDecision.message_id)))
        kept = s.scalar(select(func.count(Message.id)).where(Message.id.in_(two)))
    assert [(r.message_id, r.action, r.who) for r in rows] == [(i, "dismiss", "manager-li") for i in sorted(two)]
    assert all(before <= r.at.replace(tzinfo=dt.UTC) <= dt.datetime.now(dt.UTC) for r in rows)
    assert kept == 2  # nothing is deleted


def test_a_group_that_changed_is_not_found_and_ids_must_be_of_the_group(
        conv: Conversations, queue: ReviewQueue) -> None:
    ask_each(conv, GENUINE[:3] + UNRELATED)
    genuine, *others = queue.clusters()
    with pytest.raises(InvalidInputError, match="not in it"):
        queue.decide(genuine.id, "dismiss", "admin", message_ids=[others[0].items[0].id])
    with pytest.raises(InvalidInputError, match="action must be"):
        queue.decide(genuine.id, "delete", "admin")
    ask_each(conv, GENUINE[3:4])  # a new message joins the group: what the manager saw is not the group now
    with pytest.raises(NotFoundError, match="read it again"):
        queue.decide(genuine.id, "dismiss", "admin")
    grown = cluster_with(queue.clusters(), GENUINE[0])
    queue.decide(grown.id, "dismiss", "admin")
    with pytest.raises(NotFoundError):  # decided: gone
        queue.decide(grown.id, "dismiss", "admin")


def test_always_a_person_adds_examples_of_human_other(conv: Conversations, bot, store: Store,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    # Given a copy of the knowledge base, a question it lacks and one human.other has already
    faq = Path(shutil.copytree(DATA, tmp_path / "faq"))
    queue = ReviewQueue(store, lambda: bot, KnowledgeEditor(faq, store))
    assert "是正品吗" in knowledge.load(faq).entries["human.other"].examples
    ask_each(conv, ["你们店在哪个城市", "这个是什么材质"])
    by_text = {i.text: c for c in queue.clusters() for i in c.items}
    # When the manager marks both "always a person"
    new = queue.decide(by_text["你们店在哪个城市"].id, "human", "manager-li")
    ask_each(conv, ["是正品吗"])
    known = queue.decide(cluster_with(queue.clusters(), "是正品吗").id, "human", "manager-li")
    # Then the new one is an example of human.other, to be learnt; the known one changes nothing
    assert (new["intent"], new["retrain"], known["retrain"]) == ("human.other", True, False)
    assert "你们店在哪个城市" in knowledge.load(faq).entries["human.other"].examples
    with store.tx() as s:
        rows = [(r.action, r.intent, r.who) for r in s.scalars(select(ReviewDecision))]
    assert rows == [("human", "human.other", "manager-li")] * 2
    assert [texts_of(c) for c in queue.clusters()] == [{"这个是什么材质"}]


class RacingEditor:
    """An editor during whose change another manager dismisses the same messages."""

    def __init__(self, other: ReviewQueue) -> None:
        self.other = other
        self.calls: list[tuple[str, list[str], str]] = []

    def add_examples(self, intent: str, texts: list[str], who: str) -> SimpleNamespace:
        self.calls.append((intent, texts, who))
        self.other.decide(self.other.clusters()[0].id, "dismiss", "manager-wang")
        return SimpleNamespace(retrain=True)

    def create_entry(self, intent: str, title: str, answer: str, examples: list[str], who: str) -> SimpleNamespace:
        raise AssertionError("not used")


def test_messages_decided_meanwhile_by_someone_else_are_a_conflict(
        conv: Conversations, bot, store: Store) -> None:  # type: ignore[no-untyped-def]
    ask_each(conv, GENUINE[:2])
    editor = RacingEditor(ReviewQueue(store, lambda: bot))
    mine = ReviewQueue(store, lambda: bot, editor)
    with pytest.raises(ConflictError, match="meanwhile"):
        mine.decide(mine.clusters()[0].id, "human", "manager-li")
    assert editor.calls == [("human.other", [GENUINE[1], GENUINE[0]], "manager-li")]
    with store.tx() as s:
        assert set(s.scalars(select(ReviewDecision.who))) == {"manager-wang"}  # theirs, whole; none of mine
    assert mine.clusters() == []


def test_the_chat_server_does_not_load_scikit_learn() -> None:
    code = ("import sys, api.main, bot.manage.review, bot.manage.grouping; "
            "sys.exit('sklearn' in sys.modules or 'scipy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
