"""The rules that must never fail, and the calm questions they must leave alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.dialogue import rules
from bot.dialogue.results import Reason
from bot.language.normalize import normalize
from training.evaluate import read_jsonl


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
    ("不想退 能不能补发一根桌腿", Reason.PROBLEM),  # a part sent again: an order of its own
    ("那啥时候补寄", Reason.PROBLEM),
    ("物流显示签收了但我没收到", Reason.PROBLEM),
    ("充不進電", Reason.PROBLEM),
    ("零食过期了", Reason.PROBLEM),
    ("他妈的 三天了还不发", Reason.COMPLAINT),
    ("给你们打一星", Reason.COMPLAINT),
    ("要是还这样我就申请平台介入", Reason.COMPLAINT),  # a threat stays a complaint when conditional
    ("杯子收到就碎了 如果不给换我就投诉", Reason.COMPLAINT),
    ("如果不行的话 反正屏幕已经碎了", Reason.PROBLEM),  # the hypothetical ends before the problem
    ("我要找客服", Reason.REQUESTED),
    ("找个真人客服来", Reason.REQUESTED),
    ("东西坏成这样 你们得给我个说法", Reason.COMPLAINT),  # an account demanded
    ("我不要退款 就要讨个说法", Reason.COMPLAINT),
    # an edit of the goods ordered: only a person can change an order
    ("鞋子拍错颜色了 帮我把黑色改成白色", Reason.OUT_OF_SCOPE),
    ("已经付款了 还能改尺码吗", Reason.OUT_OF_SCOPE),
    ("订单数量帮忙改成三个", Reason.OUT_OF_SCOPE),
    ("拍了128G的 想改成256G 差价我补", Reason.OUT_OF_SCOPE),
    ("下單選錯口味了 能改一下嗎", Reason.OUT_OF_SCOPE),
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
    "红包过期了还能用吗", "券过期了能补吗", "发票邮箱填错了 能重新发吗", "换货会重新发货吗", "什么时候补货",
    # a problem in a hypothetical asks about policy
    "万一收到是碎的 运费谁出", "假如发错颜色了能换吗", "屏幕有坏点的话能退吗", "要是收到是坏的怎么办",
    "安装要另外付人工费吗",  # 人工 as labour, not a person
    # changes the shopper makes, or that other entries answer: the address, the phone, the courier,
    # the invoice, a cancellation, an exchange of goods received; an edit with no order named
    "拍错了 地址能改成公司吗", "下单后电话号码能改吗", "我想改成送到单位 下单时填的家里", "付款了能改顺丰吗",
    "发票抬头已经开了 能改成公司吗", "颜色拍错了 能取消重拍吗", "收到了 想把M换成L", "买了的裤子收到了 能改成大一码吗",
    "改成朝阳区那个", "这个能改尺寸吗", "换成白色呢", "拍下后能改价吗",
    # asking whether the goods are genuine, before buying
    "是不是正品", "会不会是假货", "有假货吗", "保证不是高仿吧", "有没有翻新机", "会不会是二手的", "怕买到假货",
    # asking whether the goods will pill, fade or leak, before buying
    "这件会起球吗", "会不会掉色", "穿久了容易变形吗", "保温杯会不会漏水", "这个有异味吗", "用久了会褪色不",
])
# fmt: on
def test_rules_leave_calm_questions_alone(text: str) -> None:
    assert rules.match(normalize(text)) is None


# fmt: off
@pytest.mark.parametrize("text", [
    # a request for a person, taken back
    "不用转人工哈 我就问问什么时候发", "不要转人工 我就问下有没有半码", "我不需要转人工 你就说能不能改地址",
    "不需要人工 直接告诉我加几块钱", "没要转人工啊 就问能不能开发票", "不用找你们经理 就问几天能到",
    "不找店长 你告诉我就行", "我不是要找客服 你就说能不能分期",
    "别给我转人工 我自己看", "无需人工客服 查下物流就好",
    # a complaint or a bad review the shopper will not make
    "不是要投诉 就想问快递到哪了", "没有要投诉的意思 就是有点急", "别担心 不会投诉的 想换个大码",
    "不会给差评的 就是想换个颜色", "不打算给差评 问下怎么退", "也不是说要投诉 就是问问运费",
    # a problem the shopper does not have (a concession)
    "倒不至于坏了 就是袖子有点短能换吗", "不至于坏了 就是有点松", "没有质量问题 就是不喜欢能退吗",
    "并没有发错 就问能不能换色", "也不是质量问题 就是小了",
    # an order edit the shopper does not want
    "不用改了 拍了就这个吧", "不想改颜色 就问下什么时候发货 已经付款了",
    # conceded right after the trigger word
    "差评倒不至于 就是想换个码", "转人工就不用了 包邮吗", "质量问题倒没有 就是有点紧",
    "投诉就算了 你们尽快发吧", "找人工的话就不必了 告诉我几天到", "不急着找人工 你先说下几天发货",
    "投诉倒也不用 我就问问发票", "找客服就没必要了 几号发", "维权犯不着 问下运费险",
    # other ways of saying no, and a question answered at once
    "谈不上投诉 就问下什么时候发", "算不上质量问题 想问能不能换色", "我哪会给差评 问下有赠品吗",
    "没想过找人工 就问问几天到", "不劳烦人工了 发票怎么开", "给差评？不至于 问下怎么换货",
    "转人工?不用不用 几号发货", "有异味吗？没有 我就问下能放多久",
])
# fmt: on
def test_a_trigger_word_taken_back_fires_no_rule(text: str) -> None:
    assert rules.match(normalize(text)) is None


# fmt: off
@pytest.mark.parametrize("text, reason", [
    ("你们是不是骗子", Reason.COMPLAINT),            # a question of the A-not-A form, not a negation
    ("会不会坏了啊 收到就碎了", Reason.PROBLEM),
    ("我没办法了转人工", Reason.REQUESTED),           # the negation is about something else
    ("我不要机器人 转人工", Reason.REQUESTED),
    ("怎么还不发货 我要投诉", Reason.COMPLAINT),
    ("再不发货我就投诉", Reason.COMPLAINT),
    ("不是你们的问题是快递的问题 我要投诉快递", Reason.COMPLAINT),
    ("不要敷衍我", Reason.COMPLAINT),                # what the shop does cannot be taken back
    ("别忽悠我了", Reason.COMPLAINT),
    ("你们别骗人了", Reason.COMPLAINT),
    ("不是说好包邮吗 骗子", Reason.COMPLAINT),
    ("不用转人工了 算了 我要投诉", Reason.COMPLAINT),  # one trigger taken back, another not
    ("不想投诉的 但是东西碎了", Reason.PROBLEM),
    ("收到的是假货", Reason.PROBLEM),                # a fake received, not a question
    ("你们卖假货", Reason.PROBLEM),
    ("鉴定了不是正品 怎么办", Reason.PROBLEM),
    ("这个是翻新机吧 屏幕有划痕", Reason.PROBLEM),
    ("怎么会掉色", Reason.PROBLEM),                  # a defect received, asked why
    ("为什么会起球", Reason.PROBLEM),
    ("洗了一次就起球", Reason.PROBLEM),
    ("收到有异味", Reason.PROBLEM),                  # stated, not asked
    ("有点掉色", Reason.PROBLEM),
    ("衣服会掉色吗 洗了两次掉了好多", Reason.PROBLEM),
    ("我直接给差评算了", Reason.COMPLAINT),          # 算了 after a verb: "I might as well"
    ("转人工算了", Reason.REQUESTED),
    ("坏了没有人管吗", Reason.PROBLEM),               # 没有 goes on: no concession
    ("不急 找人工", Reason.REQUESTED),                # 不急, then a request
    ("转人工不用排队吧", Reason.REQUESTED),           # 不用 about something else
    ("差评不至于？我偏要给", Reason.COMPLAINT),        # a concession asked back
    ("别说了 转人工", Reason.REQUESTED),              # the negation's clause ended before the trigger
    ("不需要你 叫你们经理来", Reason.REQUESTED),
    ("再不转人工我就退货了", Reason.REQUESTED),        # a condition, not a negation
    ("转人工？不要再让我等了", Reason.REQUESTED),      # a question answered, but not with a denial
    ("转人工?没有人工吗", Reason.REQUESTED),
    ("给我转个人工吧", Reason.REQUESTED),             # 转个人工, a typo of it, 人工 said first, 直接人工
    ("转人功", Reason.REQUESTED),
    ("人工!! 不要再自动回复了", Reason.REQUESTED),
    ("这种问题直接人工吧", Reason.REQUESTED),
    ("不开机 是坏的", Reason.PROBLEM),
])
# fmt: on
def test_a_real_request_complaint_or_problem_still_fires(text: str, reason: Reason) -> None:
    hit = rules.match(normalize(text))
    assert hit is not None and hit[0] == reason


# Written by a helper who read neither the rules nor data/faq: 120 messages that take a trigger back in
# every form the helper could think of (before it, after it, asked and answered, far, rhetorical) and 80
# that still ask for a person, complain or report a problem near a negation word. The rules were mended on
# it (2026-11-28): a development set, it holds what was reached and does not measure generalisation.
TAKEN_BACK = Path(__file__).with_name("taken_back.jsonl")


def test_the_forms_of_taking_a_trigger_back_and_of_meaning_it() -> None:
    """Measured 2026-11-28: a rule fired on 14 of the 120 taken back (57 before the mend) and missed 4 of
    the 80 meant (12 before); what the rules miss of those, the classifier mostly reads."""
    rows = read_jsonl(TAKEN_BACK)
    back = [r["text"] for r in rows if r["kind"] == "taken_back"]
    meant = [r["text"] for r in rows if r["kind"] == "real"]
    assert (len(back), len(meant)) == (120, 80)
    assert sum(rules.match(normalize(t)) is not None for t in back) <= 16
    assert sum(rules.match(normalize(t)) is None for t in meant) <= 4


def test_a_person_not_wanted_is_taken_back_though_no_rule_names_one() -> None:
    """人工 or 客服 alone fires no rule, but the classifier reads it as loudly as 转人工: said not to be
    wanted (用不着人工, 客服就不用了), the request is taken back; asked for (没有人工吗), it is not."""
    for text in ("用不着人工 尺码表发我", "客服就不用了 你告诉我运费多少", "人工不用了，能开发票吗",
                 "不需要客服 几天能到"):
        assert rules.read(normalize(text)) == (None, frozenset({Reason.REQUESTED})), text
    for text in ("没有人工吗", "客服不在吗", "有客服吗 我要退款", "不是客服吗"):
        assert Reason.REQUESTED not in rules.read(normalize(text))[1], text


NEGATIONS = Path(__file__).with_name("negations.yml")
# Denying an accusation still names it: these stay with a person, on purpose.
ACCUSATIONS_DENIED = {"没说你们是骗子啊 就问问发的哪家快递", "不是怀疑你们是骗子哈 就是想货到付款 放心点",
                      "也不是说嫌贵要差评 就问偏远地区加多少"}


def negated_questions() -> list[tuple[str, str]]:
    entries = yaml.safe_load(NEGATIONS.read_text(encoding="utf-8"))
    return [(e["intent"], line[2:].strip()) for e in entries for line in e["examples"].splitlines() if line.strip()]


def test_a_hundred_and_sixty_ways_of_taking_a_trigger_back() -> None:
    """Written apart from the rules, in every form shoppers use (不用/不需要/不是/没有/倒不至于/不会给/
    别担心/也不是说, before or after the question): the rules leave them to the classifier."""
    questions = negated_questions()
    fired = {text for _, text in questions if rules.match(normalize(text))}
    assert len(questions) >= 150 and fired == ACCUSATIONS_DENIED
