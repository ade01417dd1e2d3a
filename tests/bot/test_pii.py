"""Personal data is masked however shoppers write it; the question around it stays."""

from __future__ import annotations

import pytest

from bot.language.pii import mask


@pytest.mark.parametrize(("text", "masked"), [
    ("我的手机号是13812345678，身份证110101199003071234，订单号2024031512345678",
     "我的手机号是[手机号]，身份证[身份证]，订单号[单号]"),
    ("电话138-1234-5678", "电话[手机号]"),
    ("电话138.1234.5678", "电话[手机号]"),
    ("电话138 1234 5678", "电话[手机号]"),
    ("电话+86 13812345678", "电话[手机号]"),
    ("电话138\u200b1234\u200b5678", "电话[手机号]"),  # invisible characters hide nothing
    ("座机(010)12345678", "座机[电话]"),
    ("座机0571 8888 6666", "座机[电话]"),
    ("座机0571-88886666", "座机[电话]"),
    ("身份证110105 19491231 002X", "身份证[身份证]"),
    ("单号JD123456789", "单号[单号]"),
    # Chinese has no spaces: the words just before an address go with it (masking more, never less).
    ("寄到北京市朝阳区建国路88号3单元502室", "[地址]"),
    ("地址杭州市西湖区文三路478号华星时代广场A座1201室，收件人", "[地址]，收件人"),
    ("广东省深圳市南山区科技园南区高新南七道", "[地址]"),
])
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.mark.parametrize("text", ["165cm 100斤穿什么码", "满199减20可以叠加吗", "快递一直没到，转人工", "38码偏大吗",
                                  "7天无理由退货吗", "2024年双11有活动吗"])
def test_ordinary_questions_are_left_as_they_are(text: str) -> None:
    assert mask(text) == text
