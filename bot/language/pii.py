"""Masking of personal data (phones, order numbers, ID cards, addresses) in logs, exports and webhooks.

Numbers are found however shoppers space or punctuate them (138-1234-5678, 138.1234.5678,
(010)12345678, 110105 19491231 002X) and through the invisible characters that could hide them;
an address from its administrative levels (省/市/区) or from a street with a number, with what
follows it (building, block, room). Phone numbers written in Chinese numerals are not found.
"""

from __future__ import annotations

import re

_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060-\u2064\ufeff]")
_ADDRESS_TAIL = r"[\u4e00-\u9fa5A-Za-z\d\-#]"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<!\d)\d{6}[\s-]?\d{8}[\s-]?\d{3}[\dxX](?![\dA-Za-z])"), "[身份证]"),
    (re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d[\s.\-]?\d{4}[\s.\-]?\d{4}(?!\d)"), "[手机号]"),
    (re.compile(r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3})[\s\-]?\d{3,4}[\s\-]?\d{4}(?!\d)"), "[电话]"),
    (re.compile(r"(?<![\dA-Za-z])[A-Za-z]{0,4}\d{9,}(?!\d)"), "[单号]"),
    # a street with a number, and the building and room after it
    (re.compile(r"[\u4e00-\u9fa5]{2,}(省|市|区|县|镇|乡|街道|路|街|巷|弄|村)[\u4e00-\u9fa5A-Za-z\d]*"
                r"(\d+号|号楼|单元|室|座|栋|幢)" + _ADDRESS_TAIL + "*"), "[地址]"),
    # administrative levels (省 市 区), and what follows them up to the last place word
    (re.compile(r"(?:[\u4e00-\u9fa5]{2,}(?:省|自治区))?[\u4e00-\u9fa5]{2,}(?:市|州|盟)[\u4e00-\u9fa5]{1,8}?(?:区|县|市|旗)"
                r"(?:" + _ADDRESS_TAIL + r"*(?:路|街|道|号|室|座|栋|幢|楼|村|园|区|厦|场|层|单元))?"), "[地址]"),
)


def mask(text: str) -> str:
    """Replace personal data with placeholders; the rest of the text is kept."""
    text = _INVISIBLE.sub("", text)
    for pattern, label in _PATTERNS:
        text = pattern.sub(label, text)
    return text
