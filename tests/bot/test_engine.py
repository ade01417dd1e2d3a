"""The engine's reading of a message's form: the one question of a message that first denies
something (没想退货哈 就问问一般几天能发) is what the model ranks; the rules still read the whole."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.dialogue.engine import asked
from bot.dialogue.policy import SessionState
from bot.language.normalize import normalize
from training.evaluate import read_jsonl


# fmt: off
@pytest.mark.parametrize("text, question", [
    ("没想退货哈 就问问一般几天能发", "一般几天能发"),
    ("不要转人工 我就问下这鞋有半码吗", "这鞋有半码吗"),
    ("我不是要找客服 你就告诉我能不能付", "能不能付"),
    ("不是要退 只是问一下运费险怎么赔", "运费险怎么赔"),
    ("不用轉人工 你直接說下幾號發", "几号发"),
    ("别担心不会差评 我只想知道几天到", "几天到"),
    # No denial before the marker, or a fact said with its topic, or a want gone: the whole message.
    ("我就问下什么时候发", "我就问下什么时候发"),
    ("退货的话 我就想问下运费谁出", "退货的话 我就想问下运费谁出"),
    ("没有发票 我想问下怎么开", "没有发票 我想问下怎么开"),
    ("拍错了不要了 我想问下怎么退款", "拍错了不要了 我想问下怎么退款"),
    ("不用转人工 我就问问", "不用转人工 我就问问"),  # nothing asked after the marker
])
# fmt: on
def test_the_question_after_a_denial(text: str, question: str) -> None:
    assert asked(normalize(text)) == question


def test_a_denied_topic_does_not_pull_the_question(bot) -> None:  # type: ignore[no-untyped-def]
    """The model reads the question, in a chat and alone; a trigger in the denial is still taken back,
    and one that is not denied still hands off."""
    for head in ("没想退货哈 就问问", "不用转人工 我就问下", "不是要投诉 只想知道"):
        with_head, plain = bot.reply(head + "一般几天能发"), bot.reply("一般几天能发")
        assert (with_head.action, with_head.intent) == (plain.action, plain.intent), head
        assert with_head.route == "faq"
    still = bot.reply("我要投诉 不是开玩笑 我就问下你们几天能发", SessionState())
    assert (still.route, still.reason) == ("human", "complaint")


def test_a_follow_up_joins_the_question_of_a_denial_before_it(bot) -> None:  # type: ignore[no-untyped-def]
    """The message after 不要转人工 我就问下这鞋有半码吗 is read joined to the question, not to the denial:
    the 转人工 taken back there does not come back as the follow-up's human mass."""
    for head, question, follow_up in (("不要转人工 我就问下", "这鞋有半码吗", "39的脚长多少"),
                                      ("不是要投诉 就想问问", "快递到哪了", "单号多少"),
                                      ("不用转人工 我就问下", "拆封了还能退吗", "运费谁出")):
        readings = []
        for first in (head + question, question):
            _, state = bot.turn(first, SessionState())
            out = bot.turn(follow_up, replace(state, last_text=first))[0]
            readings.append((out.action, out.intent, [(p.intent, round(p.confidence, 6)) for p in out.ranking]))
        assert readings[0] == readings[1], head + question


def test_a_trigger_conceded_after_it_or_a_person_not_wanted_is_no_handoff(bot) -> None:  # type: ignore[no-untyped-def]
    """差评倒不至于, 转人工就不用了, 用不着人工: the shopper says what they do not want, then asks; in a chat
    and alone the question is read, not the word for a person or a complaint."""
    for text in ("差评倒不至于 就是想问下怎么换货", "转人工就不用了 包邮吗", "用不着人工 尺码表发我看看",
                 "人工不用了 能开发票吗"):
        assert bot.reply(text).route == "faq", text
        assert bot.predict(text).route == "faq", text
    assert bot.reply("我直接给差评算了").route == "human"


def test_a_closing_after_an_answer_is_answered_as_one(bot) -> None:  # type: ignore[no-untyped-def]
    """好 那我先拍一件黑的 after a question: the shopper takes the answer and asks nothing (bot.language.forms);
    a question after the same acknowledgement is still a question."""
    for first in ("这款卫衣有几个颜色", "这个台灯支持货到付款吗"):
        _, state = bot.turn(first, SessionState())
        for closing in ("好 那我先拍一件黑的", "行 那我晚点再下单", "嗯嗯 那我等到货再买", "好的 我去拍了",
                        "没事 晚几天也没关系"):  # handed off as a complaint before its 几 was read as "a few"
            out = bot.turn(closing, state)[0]
            assert (out.action, out.intent) == ("answer", "smalltalk.thanks"), (first, closing)
        asked_again = bot.turn("好的 那什么时候发货", state)[0]
        assert asked_again.intent != "smalltalk.thanks"


def test_an_acknowledgement_that_turns_is_not_thanked(bot) -> None:  # type: ignore[no-untyped-def]
    """After an answer, 好的 followed by a problem, impatience or a request for a person is no closing: the
    shopper is not thanked and left (in a chat a closing is answered as one whatever its words weigh)."""
    for first in ("这款卫衣有几个颜色", "这个台灯支持货到付款吗"):
        _, state = bot.turn(first, SessionState())
        for turned in ("好的 可是枕头一股怪味", "好吧 都一周了还没发", "嗯 可是昨天问了一天没人回",
                       "行吧 你们也太慢了"):
            out = bot.turn(turned, state)[0]
            assert (out.action, out.intent) != ("answer", "smalltalk.thanks"), (first, turned)
        wants = bot.turn("ok 那叫个人工过来", state)[0]
        assert (wants.route, wants.reason) == ("human", "requested")


# Written by a helper who read neither the code nor data/faq: 160 questions about the goods only a person can
# answer (material, compatibility, use, performance, authenticity, installation, custom work, warranty,
# comparison) and 140 FAQ questions that mention goods, over 189 kinds of goods. The policy was mended on it
# (a development set): it holds what was reached.
GOODS_QUESTIONS = Path(__file__).with_name("goods_questions.jsonl")
FIRST_QUESTIONS = ("什么时候发货", "退货运费谁出", "有尺码表吗", "能开发票吗", "包邮吗")


def test_a_question_about_the_goods_after_an_faq_answer_is_not_that_answer_again(bot) -> None:  # type: ignore[no-untyped-def]
    """能连电视吗 after 退货运费谁出 was answered with the return postage again (the message joined to the
    question before reads as that question): 256 of the 800 (each question after each of five FAQ questions),
    349 went to a person, and 687 of the 700 FAQ questions were right; 60, 543 and 694 on 2026-11-29."""
    rows = read_jsonl(GOODS_QUESTIONS)
    assert len(rows) == 300
    to_person = repeated = faq_right = 0
    for first in FIRST_QUESTIONS:
        _, state = bot.turn(first, SessionState())
        state = replace(state, last_text=first)
        for row in rows:
            out = bot.turn(row["text"], state)[0]
            if row["route"] == "human":
                to_person += out.route == "human"
                repeated += out.action == "answer" and out.intent == state.last_intent
            else:
                first_offered = out.suggestions[0]["intent"] if out.suggestions else None
                faq_right += (out.intent if out.action == "answer" else first_offered) in row["faq"]
    assert to_person >= 520 and repeated <= 75 and faq_right >= 685, (to_person, repeated, faq_right)
