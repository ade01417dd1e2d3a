from __future__ import annotations

from pathlib import Path

import pytest

from bot.language.forms import closing, is_question, own_question
from bot.language.normalize import normalize
from training.evaluate import read_jsonl


# fmt: off
@pytest.mark.parametrize("text", [
    "好 那我拍两个", "好的 我重新拍个白的", "算了 先不买了", "好吧 等你们消息", "行 那我明天再来",
    "嗯嗯 知道了", "好滴", "收到 我去申请", "明白了 谢谢", "OK 我先下单", "好吧，那就这样",
    "那就不买了 谢谢", "我先拍了 谢谢你", "那我再看看 辛苦啦",  # thanks that end it
    "3Q", "thx~", "感恩🙏", "谢谢小哥哥 回复好快",  # thanks first, whatever kind words follow
    "嗯嗯 好的", "行吧", "晓得了", "好的哈", "知道啦 那我下单", "ok啦", "get",  # particles, an acknowledgement twice
    "原来如此 明白了", "明白了谢谢亲 辛苦了", "缺货的话就算了", "没事 不着急", "拜拜", "88",  # understood, bye
    "那我拍两个", "我先看看哈", "我再考虑考虑", "那我过两天再买", "那我选大号的",  # what the shopper will do
    "不急不急 慢慢来", "没事没事", "可以可以", "好的呢亲", "嗯呢",  # a whole word said twice, 呢 as a particle
])
# fmt: on
def test_a_closing_acknowledges_and_asks_nothing(text: str) -> None:
    assert closing(normalize(text))


# fmt: off
@pytest.mark.parametrize("text", [
    "好的 那运费多少",           # a question word
    "好 那什么时候发货",
    "行 那能开发票吗",           # a particle
    "好的 发顺丰吗？",
    "算了 能取消不",             # 不 at the end
    "好 有没有XL",               # A-not-A
    "好吧 微信能付吧",           # a confirmation with 吧
    "我拍错颜色了", "我买的鞋子开胶了", "我等了三天了", "那我退了吧",  # no plan to buy: a fact, a step after sale
    "我要发票", "我想买个大一点的",  # a want is a request or a question
    "好评返现怎么弄",            # 好 starts a word, not an acknowledgement
    "行李箱有几个尺寸",
    "先不买了",
    "能开发票吗 谢谢",           # thanks after a question
    "退货地址发我下 谢谢",       # a request has no question's form
    "好的 麻烦帮我备注一下",
    # An acknowledgement that turns, hurries or asks for something is not one (the rules and the
    # classifier read it): a problem, impatience, a complaint, a person or an edit wanted.
    "好的 但是盒子是瘪的", "好的 可是枕头一股怪味", "收到了 杯子盖拧不上",
    "好吧 都一周了还没发", "行吧 你们也太慢了", "嗯 可是昨天问了一天没人回", "好吧 每次都这样", "好的 我付款扣了两次",
    "ok 那叫个人工过来", "好的 先别发货", "好的 帮我改成下周送", "好的 那取消吧", "谢谢 记得多垫点泡沫",
    "不急不急 可以先发货吗", "可以可以 那帮我改成黑色", "没事没事 但是怎么还没发",  # said twice, then asks or turns
])
# fmt: on
def test_a_question_or_a_plain_statement_is_no_closing(text: str) -> None:
    assert not closing(normalize(text))


# fmt: off
@pytest.mark.parametrize("text, asks", [
    ("发货了吗", True), ("几天到", True), ("哪个快递", True), ("能不能便宜点", True), ("38的呢", True),
    ("新疆能发不", True), ("发了没", True), ("怎么退", True), ("咋回事", True), ("多久能到?", True),
    ("我拍了两个", False), ("好的谢谢", False), ("先不买了", False), ("等你们消息", False),
    ("急不急", True), ("那红色的呢", True), ("不急不急", False), ("好的呢", False), ("嗯呢", False),
    # A question word before 都/也 and assent means "any": 晚几天也没关系 asks nothing; 哪天都行吗 asks.
    ("没事 晚几天也没关系", False), ("哪天发都行", False), ("多少钱都可以的", False), ("哪天都行吗", True),
    ("要等几天", True), ("晚几天也没关系吗", True),
])
# fmt: on
def test_question_forms(text: str, asks: bool) -> None:
    assert is_question(normalize(text)) is asks


# Written by a helper who read neither this module nor data/faq: 160 closings and 160 messages that open
# like one but ask, request, complain or report a problem (tagged by kind). The forms above were mended
# on it, so it is a development set: it holds what was reached, it does not measure generalisation.
CLOSINGS = Path(__file__).with_name("closings.jsonl")


def labelled(is_closing: bool) -> list[str]:
    rows = read_jsonl(CLOSINGS)
    return [r["text"] for r in rows if r["closing"] is is_closing]


def test_nothing_that_asks_complains_or_reports_a_problem_is_read_as_a_closing() -> None:
    """In a chat a closing is answered as one even when its words weigh like a complaint (好 等你们消息):
    a message read as a closing by mistake is a problem or a complaint thanked and dropped."""
    near_misses = labelled(False)
    assert len(near_misses) == 160 and [t for t in near_misses if closing(normalize(t))] == []


def test_most_closings_are_read_as_one() -> None:
    """The rest (冲了冲了 这就下单, typos: 知到了) is the classifier's; 144 of the 160 on 2026-11-28, 145 on
    2026-11-29 (没事 晚几天也没关系: its 几 means "a few")."""
    read = [closing(normalize(t)) for t in labelled(True)]
    assert len(read) == 160 and sum(read) >= 136


# fmt: off
@pytest.mark.parametrize("text, own", [
    ("要打孔吗", True), ("正品吗", True), ("纯棉的不", True), ("能连电视吗？", True), ("钱扣了会退吗", True),
    # fragments that lean on the question before: a question word, 那…, …呢, or 还/也/帮 on the matter at hand
    ("贵多少", False), ("39呢", False), ("在哪申请", False), ("那XL的有吗", False), ("还能退吗", False),
    ("也包邮吗", False), ("能帮我催一下吗", False), ("吊牌我剪了还行吗", False), ("这是什么", False),
    ("要不要", False),
])
# fmt: on
def test_a_yes_no_question_of_its_own(text: str, own: bool) -> None:
    assert own_question(normalize(text)) is own
