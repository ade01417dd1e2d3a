"""Presence and automatic assignment in a real browser: an agent sets 忙碌 and 在线 from the keyboard, a chat
that waited while she was busy becomes hers the moment she is online (notice, badge, beep, the tab's
title, in 处理中), and closing the console makes her away at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.browser.conftest import agent_console, chat, shot
from tests.browser.test_contrast import low_contrast
from tests.browser.test_workbench import COUNT_BEEPS
from tests.server import Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

BOB = {"Authorization": f"Bearer {OTHER_TOKEN}"}


@pytest.fixture()
def server(models_dir: Path, tmp_path: Path) -> Iterator[Server]:
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}",
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN}", "KEFU_AGENT_NAMES": "alice:小美",
           "KEFU_ASSIGNMENT": "auto", "KEFU_MAX_CHATS": "3"}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def status_of(srv: Server, name: str) -> str:
    agents = httpx.get(srv.url + "/v1/agents", headers=BOB, timeout=30).json()["data"]
    return next(a["status"] for a in agents if a["name"] == name)  # type: ignore[no-any-return]


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_presence_from_the_keyboard_and_a_chat_assigned_on_the_spot(server: Server, browser: Any,
                                                                    viewport: dict[str, int]) -> None:
    ctx, page, watch = agent_console(browser, server, AGENT_TOKEN, viewport, init_script=COUNT_BEEPS)
    # Signed in, she is online (her first time), and the console says how chats are given out.
    control = page.get_by_label("我的状态")
    expect(control).to_have_value("online")
    expect(page.locator("#desk-mode")).to_have_text("自动分配 · 每人最多 3 个会话 · 我有 0 个")
    assert status_of(server, "alice") == "online"
    assert low_contrast(page) == []

    # She steps away from new chats: 忙碌, from the keyboard.
    control.focus()
    page.keyboard.press("ArrowDown")
    expect(control).to_have_value("busy")
    expect(page.locator("#presence-dot")).to_have_class("presence-dot busy")  # the server's answer
    assert status_of(server, "alice") == "busy"
    # A shopper asks for a person: nobody online takes chats, so it waits (and she is told of it as before).
    hid = chat(server, "我要投诉，衣服洗一次就起球")["handoff"]["id"]
    expect(page.locator(f'#handoff-list [data-handoff="{hid}"]')).to_be_visible()
    beeps = page.evaluate("window.__beeps")

    # Back online: the chat is hers on the spot, with a notice, a badge, a beep and the title.
    control.focus()
    page.keyboard.press("ArrowUp")
    expect(control).to_have_value("online")
    expect(page.locator("#notice")).to_have_text(f"系统为您分配了新会话 #{hid}（投诉）")
    expect(page).to_have_title("(1) 新消息 · 客服工作台")
    assert page.evaluate("window.__beeps") > beeps
    page.get_by_role("tab", name="处理中").click()
    item = page.locator(f'#handoff-list [data-handoff="{hid}"]')
    expect(item.locator(".unread")).to_have_text("1")
    expect(item.locator(".item-agent")).to_have_text("客服 alice")
    item.click()
    expect(page.locator("#handoff-meta")).to_contain_text("处理中")
    expect(page.get_by_label("回复顾客")).to_be_visible()  # hers to answer: no claim needed
    expect(page.get_by_role("button", name="认领")).to_be_hidden()
    expect(page.locator("#desk-mode")).to_have_text("自动分配 · 每人最多 3 个会话 · 我有 1 个")
    if viewport["width"] > 1000:
        shot(page, "agent-presence.png")
    assert low_contrast(page) == []
    watch.assert_clean()

    # She closes the console: away at once, for the desk and her colleagues.
    page.close(run_before_unload=True)
    deadline = time.monotonic() + 15
    while status_of(server, "alice") != "away":
        assert time.monotonic() < deadline, "alice still counts as online after closing the console"
        time.sleep(0.2)
    ctx.close()
