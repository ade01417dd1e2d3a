"""A busy day in a real browser (issue 16), on a phone and on a desktop: 3,000 resolved handoffs behind
the queue, two agents at their consoles with automatic assignment and a limit of two chats each, and
five shoppers handed over one after another. The chats go round until both agents are full and the
fifth waits; a shopper sends a photo from the widget and hears her agent join by the shop's name for
her; the agent answers with the bot's draft, her colleague with a 快捷短语; a shopper writing again
raises a badge; a transfer frees a place, and the waiting chat is given out at once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.api.test_handoffs import _resolved_history
from tests.browser.conftest import Watch, agent_console, chat, shot
from tests.browser.test_contrast import WIDGET, low_contrast
from tests.browser.test_shopper import damaged_photo
from tests.server import ROOT, Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
HISTORY = 3000


@pytest.fixture()
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kefu.db'}"


@pytest.fixture()
def server(models_dir: Path, tmp_path: Path, db: str) -> Iterator[Server]:
    phrases = tmp_path / "phrases.yml"
    phrases.write_bytes((ROOT / "data" / "phrases.yml").read_bytes())
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db,
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN}", "KEFU_AGENT_NAMES": "alice:小美,bob:阿强",
           "KEFU_PHRASES_FILE": str(phrases), "KEFU_ASSIGNMENT": "auto", "KEFU_MAX_CHATS": "2"}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def holder(srv: Server, hid: int) -> str | None:
    r = httpx.get(f"{srv.url}/v1/handoffs/{hid}", headers=ALICE, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["agent"]  # type: ignore[no-any-return]


def wait_online(srv: Server, name: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        agents = httpx.get(srv.url + "/v1/agents", headers=ALICE, timeout=30).json()["data"]
        if next(a["status"] for a in agents if a["name"] == name) == "online":
            return
        assert time.monotonic() < deadline, f"{name} is not online after opening the console"
        time.sleep(0.1)


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_a_busy_day(server: Server, browser: Any, db: str, viewport: dict[str, int], tmp_path: Path) -> None:
    phone = viewport["width"] < 500
    history = _resolved_history(db, HISTORY)  # a shop's history: thousands resolved, none open
    alice_ctx, alice, alice_watch = agent_console(browser, server, AGENT_TOKEN, viewport)

    # The first shopper, in the shop's page: a damaged item. Alice is the only one online: it is hers.
    shop_ctx = browser.new_context(viewport=viewport, locale="zh-CN", has_touch=phone, is_mobile=phone)
    shop = shop_ctx.new_page()
    shop_watch = Watch(shop)
    shop.goto(server.url + "/")
    widget = shop.locator("#kefu-widget")
    widget.get_by_role("button", name="打开在线客服").click()
    widget.get_by_role("textbox", name="输入消息").fill("收到的杯子裂了一道缝")
    widget.get_by_role("textbox", name="输入消息").press("Enter")
    expect(widget.locator(".kefu-status")).to_have_text("人工客服 小美 正在为您服务")
    expect(widget.locator(".kefu-joined")).to_have_text("小美 为您服务")
    expect(alice.locator("#notice")).to_contain_text("系统为您分配了新会话")
    first = int(alice.locator("#notice").inner_text().split("#")[1].split("（")[0])
    assert holder(server, first) == "alice"

    # Bob comes online; three more shoppers ask for a person: the chats go round, two each at most.
    bob_ctx, bob, bob_watch = agent_console(browser, server, OTHER_TOKEN, viewport)
    wait_online(server, "bob")
    others = [chat(server, text)["handoff"]["id"] for text in ("我要投诉 快递员态度太差", "转人工", "人工客服在吗")]
    assert [holder(server, h) for h in others] == ["bob", "alice", "bob"]
    # A fifth waits: both are full. Someone is at the desk, so she hears of the queue, not of nobody.
    fifth = chat(server, "找人工")
    waiting = fifth["handoff"]["id"]
    assert holder(server, waiting) is None and fifth["handoff"]["position"] == 1
    assert "没有人工客服在线" not in fifth["reply"]
    for page in (alice, bob):
        expect(page.locator("#desk-mode")).to_have_text("自动分配 · 每人最多 2 个会话 · 我有 2 个")
        # The queue shows the waiting chat, whatever lies resolved behind it.
        expect(page.locator("#handoff-list .item")).to_have_count(1)
        expect(page.locator(f'#handoff-list [data-handoff="{waiting}"]')).to_be_visible()
    alice.get_by_role("tab", name=re.compile("已解决")).click()
    expect(alice.locator(f'#handoff-list [data-handoff="{history[-1]}"]')).to_be_visible()  # the newest first
    expect(alice.locator(f'#handoff-list [data-handoff="{history[0]}"]')).to_have_count(0)  # paged, not all

    # The first shopper sends a photo of the crack, then asks which courier sends the new one.
    image_button = shop.locator("#kefu-widget").get_by_role("button", name="发送图片")
    with shop.expect_file_chooser() as chooser:
        if phone:
            image_button.tap()
        else:
            image_button.click()
    chooser.value.set_files(str(damaged_photo(tmp_path)))
    expect(widget.locator(".kefu-shopper.kefu-picture img")).to_have_count(1)
    widget.get_by_role("textbox", name="输入消息").fill("补发的话走什么快递")
    widget.get_by_role("textbox", name="输入消息").press("Enter")

    # Alice opens it: the photo in the transcript, and the bot's answer as a draft she edits and sends.
    alice.get_by_role("tab", name=re.compile("处理中")).click()
    alice.locator(f'#handoff-list [data-handoff="{first}"]').click()
    expect(alice.locator("#handoff-title")).to_contain_text(f"#{first}")  # loaded: its buttons are its own
    expect(alice.get_by_role("button", name="查看顾客发送的图片（原图）")).to_have_count(1)
    expect(alice.locator("#transcript .msg-shopper .msg-text").last).to_have_text("补发的话走什么快递")
    draft = alice.locator("#drafts .draft").first
    expect(draft).to_be_visible()
    draft.click()
    box = alice.get_by_label("回复顾客")
    expect(box).to_be_focused()
    drafted = box.input_value()
    assert drafted
    box.press("End")
    box.type(" 补发的杯子今天就给您安排")
    box.press("Control+Enter")
    expect(widget.locator(".kefu-agent")).to_have_count(1)
    expect(widget.locator(".kefu-agent").last).to_contain_text("今天就给您安排")
    expect(widget.locator(".kefu-agent .kefu-author").last).to_contain_text("小美")
    if not phone:
        shot(alice, "agent-busy-day.png")
    else:
        shot(shop, "widget-busy-day.png")

    # Bob answers the complaint with a 快捷短语; the other shopper of his writes again meanwhile: a badge.
    bob.get_by_role("tab", name=re.compile("处理中")).click()
    bob.locator(f'#handoff-list [data-handoff="{others[0]}"]').click()
    expect(bob.locator("#handoff-title")).to_contain_text(f"#{others[0]}")
    bob.get_by_role("button", name="快捷短语").click()
    bob.get_by_label("搜索快捷短语").fill("退货")
    expect(bob.locator("#phrase-list .phrase-title").first).to_have_text("退货地址")
    bob.get_by_label("搜索快捷短语").press("Enter")
    expect(bob.get_by_label("回复顾客")).to_have_value(re.compile("退货"))
    bob.get_by_label("回复顾客").press("Control+Enter")
    expect(bob.locator("#transcript .msg-agent")).to_have_count(1)
    unread = bob.locator(f'#handoff-list [data-handoff="{others[2]}"] .unread')
    expect(unread).to_have_text("1")  # given to him, not opened yet
    chat(server, "还在吗 我等好久了", session_of(server, others[2]))
    expect(unread).to_have_text("2")
    expect(bob).to_have_title(re.compile(r"^\(\d+\) 新消息"))

    # Alice hands her other chat to bob with a note: her place frees, and the waiting chat is hers at once.
    alice.locator(f'#handoff-list [data-handoff="{others[1]}"]').click()
    expect(alice.locator("#handoff-title")).to_contain_text(f"#{others[1]}")
    alice.get_by_role("button", name="转交", exact=True).click()
    alice.get_by_label("转交给").select_option("bob")
    alice.get_by_label("转交备注").fill("顾客要人工，还没说什么事")
    alice.get_by_role("button", name="确认转交").click()
    expect(alice.locator("#notice")).to_have_text(f"已将会话 #{others[1]} 转交给bob（阿强）")
    given = alice.locator(f'#handoff-list [data-handoff="{waiting}"]')  # 处理中, hers, not opened yet
    expect(given.locator(".unread")).to_have_text("1")
    expect(given.locator(".item-agent")).to_have_text("客服 alice")
    assert holder(server, waiting) == "alice" and holder(server, others[1]) == "bob"
    expect(alice.locator("#desk-mode")).to_have_text("自动分配 · 每人最多 2 个会话 · 我有 2 个")
    expect(bob.locator("#desk-mode")).to_have_text("自动分配 · 每人最多 2 个会话 · 我有 3 个")

    assert low_contrast(alice) == [] and low_contrast(bob) == []
    assert low_contrast(shop) == [] and low_contrast(shop, WIDGET) == []  # the shop's page, and the widget in it
    for watch in (alice_watch, bob_watch, shop_watch):
        watch.assert_clean()
    for ctx in (shop_ctx, alice_ctx, bob_ctx):
        ctx.close()


def session_of(srv: Server, hid: int) -> str:
    r = httpx.get(f"{srv.url}/v1/handoffs/{hid}", headers=ALICE, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["session_id"]  # type: ignore[no-any-return]
