from __future__ import annotations

import pytest

from bot.language.forms import closing, is_question
from bot.language.normalize import normalize


# fmt: off
@pytest.mark.parametrize("text", [
    "好 那我拍两个", "好的 我重新拍个白的", "算了 先不买了", "好吧 等你们消息", "行 那我明天再来",
    "嗯嗯 知道了", "好滴", "收到 我去申请", "明白了 谢谢", "OK 我先下单", "好吧，那就这样",
    "那就不买了 谢谢", "我先拍了 谢谢你", "那我再看看 辛苦啦",  # thanks that end it
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
    "那我拍两个",                # no acknowledgement first
    "好评返现怎么弄",            # 好 starts a word, not an acknowledgement
    "行李箱有几个尺寸",
    "先不买了",
    "能开发票吗 谢谢",           # thanks after a question
    "退货地址发我下 谢谢",       # a request has no question's form
    "好的 麻烦帮我备注一下",
])
# fmt: on
def test_a_question_or_a_plain_statement_is_no_closing(text: str) -> None:
    assert not closing(normalize(text))


# fmt: off
@pytest.mark.parametrize("text, asks", [
    ("发货了吗", True), ("几天到", True), ("哪个快递", True), ("能不能便宜点", True), ("38的呢", True),
    ("新疆能发不", True), ("发了没", True), ("怎么退", True), ("咋回事", True), ("多久能到?", True),
    ("我拍了两个", False), ("好的谢谢", False), ("先不买了", False), ("等你们消息", False),
])
# fmt: on
def test_question_forms(text: str, asks: bool) -> None:
    assert is_question(normalize(text)) is asks
