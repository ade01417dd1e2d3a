"""The rules that must never fail, and the calm questions they must leave alone."""

from __future__ import annotations

import pytest

from bot.dialogue import rules
from bot.dialogue.policy import Reason
from bot.language.normalize import normalize


# fmt: off
@pytest.mark.parametrize("text, reason", [
    ("转人工", Reason.REQUESTED),
    ("我要人工客服", Reason.REQUESTED),
    ("你是机器人吧，叫你们店长出来", Reason.REQUESTED),
    ("給我打個電話", Reason.REQUESTED),
    ("答非所问，换个客服", Reason.REQUESTED),
    ("我要投诉你们", Reason.COMPLAINT),
    ("再不处理我就打12315", Reason.COMPLAINT),
    ("你们就是骗子", Reason.COMPLAINT),
    ("垃圾店，给差评", Reason.COMPLAINT),
    ("態度太差了吧", Reason.COMPLAINT),
    ("收到的杯子碎了", Reason.PROBLEM),
    ("衣服有个洞", Reason.PROBLEM),
    ("发错货了，我买的黑色给我发白色", Reason.PROBLEM),
    ("少发了一件", Reason.PROBLEM),
    ("物流显示签收了但我没收到", Reason.PROBLEM),
    ("充不進電", Reason.PROBLEM),
    ("零食过期了", Reason.PROBLEM),
    ("他妈的 三天了还不发", Reason.COMPLAINT),
    ("给你们打一星", Reason.COMPLAINT),
    ("要是还这样我就申请平台介入", Reason.COMPLAINT),  # a threat stays a complaint when conditional
    ("杯子收到就碎了 如果不给换我就投诉", Reason.COMPLAINT),
    ("如果不行的话 反正屏幕已经碎了", Reason.PROBLEM),  # the hypothetical ends before the problem
])
# fmt: on
def test_rules_route_to_a_person(text: str, reason: Reason) -> None:
    hit = rules.match(normalize(text))
    assert hit is not None and hit[0] == reason


# fmt: off
@pytest.mark.parametrize("text", [
    "什么时候发货", "还没收到货，到哪了", "不是质量问题，就是小了想退",
    "优惠券用不了", "尺码不对想换个大一号", "滚筒洗衣机包邮吗", "订单23151发了吗",
    "可以开发票吗", "怎么退货", "在吗",
    # words that only look like a problem or a swear word
    "满几件包邮", "满减多少", "送我妈的 能包装好看点吗", "等一星期能到吗",
    "红包过期了还能用吗", "券过期了能补吗",
    # a problem in a hypothetical asks about policy
    "万一收到是碎的 运费谁出", "假如发错颜色了能换吗", "屏幕有坏点的话能退吗",
])
# fmt: on
def test_rules_leave_calm_questions_alone(text: str) -> None:
    assert rules.match(normalize(text)) is None
