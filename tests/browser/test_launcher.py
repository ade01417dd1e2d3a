"""The launcher where the shop wants it (issue 16, item 5): by default clear of a phone page's bottom
buy bar (立即购买 / 加入购物车), on the left with data-position="left", higher or lower with
data-offset-bottom, icon-only with data-launcher="compact"; values it does not understand are warned
about in the console and ignored. Every variant keeps its name, a 44x44 target and an AA focus ring.

The shop is the demo page (its buy bar is pinned to the bottom on phones), served with the script
tag's attributes of each case.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Watch
from tests.browser.test_contrast import bad_rings
from tests.server import ROOT, Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 768}
DEMO_TAG = '<script src="/static/kefu-widget.js" defer></script>'


def open_shop(server: Server, browser: Any, viewport: dict[str, int], attrs: str = "",
              warnings: list[str] | None = None) -> tuple[Any, Watch]:
    """The demo shop with `attrs` on the widget's tag, in a fresh context (a touch screen on a phone);
    the console's warnings go to `warnings`."""
    page = browser.new_context(viewport=viewport, locale="zh-CN", has_touch=viewport == PHONE).new_page()
    watch = Watch(page)
    if warnings is not None:
        page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    html = (ROOT / "api/static/index.html").read_text(encoding="utf-8")
    assert DEMO_TAG in html
    shop = html.replace(DEMO_TAG, DEMO_TAG.replace(" defer", f" {attrs} defer"))
    page.route(server.url + "/shop", lambda route: route.fulfill(status=200, content_type="text/html", body=shop))
    page.goto(server.url + "/shop")
    expect(launcher_of(page)).to_be_visible()
    return page, watch


def launcher_of(page: Any) -> Any:
    return page.locator("#kefu-widget").get_by_role("button", name="打开在线客服")


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def from_bottom(box: dict[str, float], viewport: dict[str, int]) -> float:
    return viewport["height"] - (box["y"] + box["height"])


def test_the_default_launcher_leaves_the_phones_buy_bar_free(server: Server, browser: Any) -> None:
    # Given the demo shop on a phone, its buy bar pinned to the bottom
    page, watch = open_shop(server, browser, PHONE)
    launcher = launcher_of(page)
    buy = page.get_by_role("button", name="立即购买")
    bar = page.locator(".buy")
    expect(bar).to_have_css("position", "fixed")

    # Then the launcher is on the right, above the bar, on neither button
    box, buy_box, bar_box = launcher.bounding_box(), buy.bounding_box(), bar.bounding_box()
    assert from_bottom(bar_box, PHONE) == 0 and 50 <= bar_box["height"] <= 64, bar_box
    assert not overlap(box, buy_box) and not overlap(box, bar_box), (box, bar_box)
    assert box["y"] + box["height"] <= bar_box["y"], (box, bar_box)
    assert box["x"] + box["width"] >= PHONE["width"] - 20, box
    assert box["width"] >= 44 and box["height"] >= 44, box

    # When the shopper taps 立即购买 at its end nearest the launcher (inside its rounded corner)
    corner = (buy_box["x"] + buy_box["width"] - 14, buy_box["y"] + buy_box["height"] / 2)
    middle = (buy_box["x"] + buy_box["width"] / 2, buy_box["y"] + buy_box["height"] / 2)
    on_top = "([x, y]) => document.elementFromPoint(x, y).textContent.trim()"
    assert [page.evaluate(on_top, list(p)) for p in (corner, middle)] == ["立即购买", "立即购买"]
    page.evaluate("""() => { window.bought = 0;
        document.querySelector('.btn-buy').addEventListener('click', () => { window.bought += 1; }); }""")
    page.touchscreen.tap(*corner)

    # Then the button got it, and the chat stayed closed
    assert page.evaluate("window.bought") == 1
    expect(page.locator("#kefu-widget").get_by_role("dialog")).to_be_hidden()

    # And the launcher still opens the chat
    launcher.click()
    expect(page.locator("#kefu-widget").get_by_role("textbox", name="输入消息")).to_be_focused()
    watch.assert_clean()


# fmt: off
PLACES = [
    # viewport, attributes,                                  side,    from the bottom
    (PHONE,   "",                                            "right", 76),
    (DESKTOP, "",                                            "right", 20),
    (PHONE,   'data-position="left"',                        "left",  76),
    (DESKTOP, 'data-position="left"',                        "left",  20),
    (PHONE,   'data-offset-bottom="130"',                    "right", 130),
    (DESKTOP, 'data-position="left" data-offset-bottom="0"', "left",  0),
    (DESKTOP, 'data-offset-bottom="96px"',                   "right", 96),
]
# fmt: on


def test_the_shop_sets_the_side_and_the_height(server: Server, browser: Any) -> None:
    for viewport, attrs, side, bottom in PLACES:
        page, watch = open_shop(server, browser, viewport, attrs)
        box = launcher_of(page).bounding_box()
        assert abs(from_bottom(box, viewport) - bottom) < 0.5, (attrs, viewport, box)
        margin = 12 if viewport == PHONE else 20
        edge = box["x"] if side == "left" else viewport["width"] - box["x"] - box["width"]
        assert abs(edge - margin) < 0.5, (attrs, viewport, box)
        if viewport == DESKTOP:  # the window opens above the launcher, on its side
            launcher_of(page).click()
            panel = page.locator("#kefu-widget").get_by_role("dialog").bounding_box()
            assert panel["y"] + panel["height"] <= box["y"] and panel["y"] >= 0, (attrs, panel, box)
            assert (panel["x"] if side == "left" else viewport["width"] - panel["x"] - panel["width"]) == margin
        watch.assert_clean()
        page.context.close()


def test_values_it_does_not_understand_are_warned_about_and_ignored(server: Server, browser: Any) -> None:
    # fmt: off
    cases = [
        ('data-offset-bottom="abc"',  ["offset-bottom"]),
        ('data-offset-bottom="-40"',  ["offset-bottom"]),
        ('data-offset-bottom="5em"',  ["offset-bottom"]),
        ('data-position="top" data-launcher="tiny"', ["position", "launcher"]),
    ]
    # fmt: on
    for attrs, named in cases:
        warnings: list[str] = []
        page, watch = open_shop(server, browser, PHONE, attrs, warnings)
        box = launcher_of(page).bounding_box()
        assert abs(from_bottom(box, PHONE) - 76) < 0.5 and abs(PHONE["width"] - box["x"] - box["width"] - 12) < 0.5
        expect(page.locator("#kefu-widget .kefu-launcher-text")).to_have_text("在线客服")
        assert [n for n in named if not any(f"data-{n}=" in w for w in warnings)] == [], (attrs, warnings)
        watch.assert_clean()
        page.context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_compact_launcher_is_an_icon_with_its_name(server: Server, browser: Any, viewport: dict[str, int]) -> None:
    page, watch = open_shop(server, browser, viewport, 'data-launcher="compact" data-position="left"')
    launcher = launcher_of(page)  # its accessible name is still 打开在线客服

    # An icon alone, no words on it, a target of at least 44x44, on the left above the buy bar
    expect(page.locator("#kefu-widget .kefu-launcher-text")).to_be_hidden()
    assert launcher.evaluate("b => b.innerText.trim()") == ""
    expect(page.locator("#kefu-widget .kefu-launcher-icon")).to_be_visible()
    box = launcher.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44, box
    assert box["x"] < viewport["width"] / 2, box
    if viewport == PHONE:
        assert box["y"] + box["height"] <= page.locator(".buy").bounding_box()["y"], box

    # The icon is white on the accent (6.2:1)
    expect(launcher).to_have_css("color", "rgb(255, 255, 255)")
    expect(launcher).to_have_css("background-color", "rgb(9, 88, 217)")

    # The keyboard reaches it with an AA ring, opens the chat and comes back to it
    bad, seen = bad_rings(page, 40, in_widget=True)
    assert bad == [] and len(seen) == 1, (bad, seen)
    launcher.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#kefu-widget").get_by_role("textbox", name="输入消息")).to_be_focused()
    page.keyboard.press("Escape")
    expect(launcher).to_be_focused()
    watch.assert_clean()
    page.context.close()
