"""What the shopper said that an answer can use: body measures, usual size, region.

Reads numbers in the forms shoppers write them: 165cm, 1米65, 1.65m, 一米六五, 52kg, 104斤,
一百二十斤, 38码, M码, 腰围2尺2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN = "零〇一二两三四五六七八九十百"


def cn_number(s: str) -> int | None:
    """'一百二十' -> 120, '一百二' -> 120, '九十五' -> 95, '六五' -> 65, '十' -> 10."""
    if not s or any(ch not in _CN for ch in s):
        return None
    if "百" in s or "十" in s:
        total, hundreds = 0, s.split("百", 1)
        if len(hundreds) == 2:
            total += 100 * (_DIGITS.get(hundreds[0], 1) if hundreds[0] else 1)
            rest = hundreds[1]
            if len(rest) == 1 and rest in _DIGITS:  # 一百二 = 120
                return total + 10 * _DIGITS[rest]
        else:
            rest = s
        if "十" in rest:
            tens, _, ones = rest.partition("十")
            total += 10 * (_DIGITS.get(tens, 1) if tens else 1) + (_DIGITS.get(ones, 0) if ones else 0)
        elif rest:
            total += _DIGITS.get(rest.lstrip("零〇"), 0)
        return total
    value = 0
    for ch in s:  # digit by digit: 六五 -> 65
        value = value * 10 + _DIGITS[ch]
    return value


def _num(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        n = cn_number(s)
        return float(n) if n is not None else None


@dataclass(frozen=True)
class Body:
    """Measures found in a message (height in cm, weight in jin)."""

    height: float | None = None
    weight: float | None = None
    size: str | None = None  # usual garment size, e.g. "M"
    shoe: int | None = None  # usual shoe size (EU)

    def any(self) -> bool:
        return any(v is not None for v in (self.height, self.weight, self.size, self.shoe))


_NUM = r"(\d{2,3}(?:\.\d)?|[零〇一二两三四五六七八九十百]{1,5})"
_HEIGHT_PATTERNS = (
    re.compile(r"(1)\s*米\s*(\d{1,2})"),                     # 1米65
    re.compile(r"([一])米([零一二两三四五六七八九]{1,2})"),      # 一米六五
    re.compile(r"(1)\.(\d{2})\s*(?:m|米)"),                  # 1.65m
)
_HEIGHT_CM = re.compile(r"(?:身高|高)?\s*(1[4-9]\d)\s*(?:cm|厘米|公分|(?=[,，。\s的/、]|$|体重|重|斤|kg))")
_WEIGHT = re.compile(_NUM + r"\s*(斤|kg|公斤|千克)")
_WEIGHT_KEYWORD = re.compile(r"(?:体重|重)\s*" + _NUM)
_SIZE = re.compile(r"(?<![a-z])(xxxl|xxl|xl|3xl|2xl|s|m|l)(?:码|号)(?![a-z])"
                   r"|(?:穿|买|拍)的?(xxxl|xxl|xl|3xl|2xl|s|m|l)(?![a-z])")
_SHOE = re.compile(r"(?<!\d)(3[4-9]|4[0-6])\s*(?:码|号)")


def read_body(text: str) -> Body:
    """Height, weight and usual sizes from normalised text."""
    height = None
    for pattern in _HEIGHT_PATTERNS:
        m = pattern.search(text)
        if m:
            rest = m.group(2)  # group 1 is the metre
            rest_n = int(rest) if rest.isdigit() else cn_number(rest)
            if rest_n is not None:
                height = 100.0 + (rest_n * 10 if rest_n < 10 and len(rest) == 1 else rest_n)
                break
    if height is None:
        m = _HEIGHT_CM.search(text)
        height = float(m.group(1)) if m else None
    weight = None
    m = _WEIGHT.search(text)
    if m:
        value = _num(m.group(1))
        if value is not None:
            weight = value if m.group(2) == "斤" else value * 2
    else:
        m = _WEIGHT_KEYWORD.search(text)
        value = _num(m.group(1)) if m else None
        if value is not None:
            weight = value * 2 if value <= 75 else value  # bare numbers: kg when small, jin otherwise
    size_m = _SIZE.search(text)
    size = (size_m.group(1) or size_m.group(2)).upper().replace("2XL", "XXL").replace("3XL", "XXXL") if size_m else None
    shoe_m = _SHOE.search(text)
    return Body(height, weight, size, int(shoe_m.group(1)) if shoe_m else None)


def recommend_size(body: Body, chart: list[dict[str, object]]) -> str | None:
    """The chart's size for the measures given; the larger one when height and weight disagree."""
    names = [str(row["size"]) for row in chart]

    def index_for(value: float | None, key: str) -> int | None:
        if value is None:
            return None
        for i, row in enumerate(chart):
            if value <= row[key][1]:  # type: ignore[index]  # ranges are inclusive: 160-165 cm is M
                return i
        return len(chart) - 1

    picks = [i for i in (index_for(body.height, "height"), index_for(body.weight, "weight")) if i is not None]
    if picks:
        return names[max(picks)]
    if body.size and body.size in names:
        return body.size
    return None


PROVINCES = ("北京 天津 河北 山西 内蒙古 辽宁 吉林 黑龙江 上海 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 "
             "广东 广西 海南 重庆 四川 贵州 云南 西藏 陕西 甘肃 青海 宁夏 新疆 香港 澳门 台湾").split()
CITIES = {
    "杭州": "浙江", "宁波": "浙江", "温州": "浙江", "义乌": "浙江", "南京": "江苏", "苏州": "江苏", "无锡": "江苏",
    "广州": "广东", "深圳": "广东", "东莞": "广东", "佛山": "广东", "成都": "四川", "武汉": "湖北", "长沙": "湖南",
    "西安": "陕西", "郑州": "河南", "济南": "山东", "青岛": "山东", "合肥": "安徽", "福州": "福建", "厦门": "福建",
    "南昌": "江西", "沈阳": "辽宁", "大连": "辽宁", "长春": "吉林", "哈尔滨": "黑龙江", "石家庄": "河北",
    "太原": "山西", "南宁": "广西", "桂林": "广西", "海口": "海南", "三亚": "海南", "贵阳": "贵州", "昆明": "云南",
    "乌鲁木齐": "新疆", "喀什": "新疆", "伊犁": "新疆", "拉萨": "西藏", "西宁": "青海", "银川": "宁夏",
    "兰州": "甘肃", "呼和浩特": "内蒙古", "包头": "内蒙古", "台北": "台湾", "高雄": "台湾", "九龙": "香港",
}
OVERSEAS = ("海外", "国外", "美国", "日本", "韩国", "英国", "加拿大", "澳洲", "澳大利亚", "新加坡", "马来西亚", "德国",
            "法国", "新西兰", "泰国")


@dataclass(frozen=True)
class Region:
    """A destination and the shop's region group for it."""

    name: str
    group: str  # local | default | remote | hmt | overseas


def read_region(text: str, local: list[str], remote: list[str], hmt: list[str]) -> Region | None:
    """The first province, city or country named in normalised text, with its group."""
    found: list[tuple[int, str, str]] = []
    for word in OVERSEAS:
        if word in text:
            found.append((text.index(word), word, word))
    for city, province in CITIES.items():
        if city in text:
            found.append((text.index(city), city, province))
    for province in PROVINCES:
        if province in text:
            found.append((text.index(province), province, province))
    if not found:
        return None
    _, name, province = min(found)
    if province in OVERSEAS:
        return Region(name, "overseas")
    if province in hmt:
        return Region(name, "hmt")
    if province in remote:
        return Region(name, "remote")
    if province in local:
        return Region(name, "local")
    return Region(name, "default")
