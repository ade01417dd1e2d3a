"""Masking of personal data (phones, order numbers, ID cards, addresses) in logs and exports."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?<!\d)\d{17}[\dxX](?!\d)"), "[身份证]"),
    (re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)"), "[手机号]"),
    (re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)"), "[电话]"),
    (re.compile(r"(?<![\dA-Za-z])[A-Za-z]{0,4}\d{10,}(?!\d)"), "[单号]"),
    (re.compile(r"[\u4e00-\u9fa5]{2,}(省|市|区|县|镇|乡|街道|路|街|巷|弄|村)[\u4e00-\u9fa5\d]*(\d+号|号楼|单元|室)"
                r"[\u4e00-\u9fa5\d-]*"), "[地址]"),
)


def mask(text: str) -> str:
    """Replace personal data with placeholders; the rest of the text is kept."""
    for pattern, label in _PATTERNS:
        text = pattern.sub(label, text)
    return text
