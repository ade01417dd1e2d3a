from __future__ import annotations

import pytest

from bot.language.normalize import normalize
from bot.language.segment import cut


# fmt: off
@pytest.mark.parametrize("raw, expected", [
    ("甚麼時候發貨？", "什么时候发货?"),          # traditional, Taiwan form, full-width punctuation
    ("運費險怎麼理賠", "运费险怎么理赔"),
    ("ＸＬ碼有貨嗎", "xl码有货吗"),              # full-width letters, case
    ("１６５ｃｍ穿多大", "165cm穿多大"),           # full-width digits
    ("发货了吗？？？！！！", "发货了吗?!"),         # repeated punctuation folded
    ("SF可以吗", "sf可以吗"),
    ("你们这样太过分了😡😡", "你们这样太过分了 生气 生气"),  # anger emoji become a word
    ("好的🌹🌹", "好的"),                        # decorative emoji dropped
    ("  在吗\t\n  ", "在吗"),
    ("退款\x00\x07呢", "退款呢"),                  # control characters
    ("亲\ud800在吗", "亲?在吗"),                   # lone surrogate replaced, not a crash
    ("退款几天到帐", "退款几天到账"),               # 帐 for 账 in money words...
    ("退款到帳了嗎", "退款到账了吗"),               # ...and in what OpenCC makes of 帳
    ("帐篷有多大", "帐篷有多大"),                   # a tent stays a tent
])
# fmt: on
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_only_emoji_is_empty() -> None:
    assert normalize("🌹🎉✨") == ""


# fmt: off
@pytest.mark.parametrize("text, word", [
    ("支持七天无理由退货吗", "七天无理由"),
    ("可以货到付款吗", "货到付款"),
    ("有运费险吗", "运费险"),
    ("能用花呗分期吗", "花呗"),
    ("发顺丰要加钱吗", "顺丰"),
    ("有尺码表吗", "尺码表"),
    ("买了以后降价能价保吗", "价保"),
])
# fmt: on
def test_user_dictionary_keeps_shop_terms_whole(text: str, word: str) -> None:
    assert word in cut(normalize(text))
