"""Reading measures, sizes and regions the way shoppers write them."""

from __future__ import annotations

import pytest

from bot.dialogue.knowledge import load_shop
from bot.dialogue.slots import Body, cn_number, read_body, read_region, recommend_size
from bot.language.normalize import normalize
from tests.conftest import DATA


# fmt: off
@pytest.mark.parametrize("text, height, weight", [
    ("165cm 110斤穿什么码", 165, 110),
    ("1米65，52kg", 165, 104),
    ("一米六五 一百斤", 165, 100),
    ("1.58m 九十五斤", 158, 95),
    ("身高168，体重126", 168, 126),
    ("我身高一米七二 体重六十公斤", 172, 120),
    ("高175 重140", 175, 140),
    ("１６８ｃｍ　１２０斤", 168, 120),
    ("一百二十斤穿多大", None, 120),
    ("体重60", None, 120),            # a bare small number is kilograms
    ("104斤能穿S吗", None, 104),
])
# fmt: on
def test_read_height_and_weight(text: str, height: float | None, weight: float | None) -> None:
    body = read_body(normalize(text))
    assert (body.height, body.weight) == (height, weight)


def test_read_usual_sizes() -> None:
    assert read_body(normalize("平时穿M码")).size == "M"
    assert read_body(normalize("我一般买XL码的")).size == "XL"
    assert read_body(normalize("38码的鞋子标准吗")).shoe == 38


@pytest.mark.parametrize("s, n", [("一百二十", 120), ("一百二", 120), ("九十五", 95), ("六五", 65), ("十", 10),
                                  ("两百", 200), ("八十", 80)])
def test_chinese_numbers(s: str, n: int) -> None:
    assert cn_number(s) == n


def test_recommend_from_the_shops_chart() -> None:
    chart = load_shop(DATA).get("sizes.chart")
    assert recommend_size(Body(height=155, weight=90), chart) == "S"
    assert recommend_size(Body(height=162, weight=105), chart) == "M"
    assert recommend_size(Body(height=162, weight=140), chart) == "XL"  # the larger when they disagree
    assert recommend_size(Body(height=190, weight=200), chart) == "XXL"
    # The chart's ranges include their ends: 165 cm and 115 jin are still M (160-165 cm, 100-115 jin).
    assert recommend_size(Body(height=165, weight=104), chart) == "M"
    assert recommend_size(Body(height=165, weight=115), chart) == "M"
    assert recommend_size(Body(height=166, weight=104), chart) == "L"
    assert recommend_size(Body(size="L"), chart) == "L"
    assert recommend_size(Body(), chart) is None


# fmt: off
@pytest.mark.parametrize("text, name, group", [
    ("寄到乌鲁木齐要几天", "乌鲁木齐", "remote"),
    ("新疆包邮吗", "新疆", "remote"),
    ("发杭州多久到", "杭州", "local"),
    ("到广州几天", "广州", "default"),
    ("寄香港运费多少", "香港", "hmt"),
    ("台灣可以寄嗎", "台湾", "hmt"),
    ("能寄到美国吗", "美国", "overseas"),
])
# fmt: on
def test_read_region(text: str, name: str, group: str) -> None:
    shop = load_shop(DATA)
    region = read_region(normalize(text), shop.get("shipping.local_regions"), shop.get("shipping.remote_regions"),
                         shop.get("shipping.hmt_regions"))
    assert region is not None and (region.name, region.group) == (name, group)


def test_no_region_named() -> None:
    assert read_region("运费多少", [], [], []) is None
