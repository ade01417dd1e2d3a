"""The agents' workbench in a real browser: who wrote last and for how long, unread badges, a beep
and the tab's title for a shopper's new message, long waits highlighted, and a confirmation before
ending a chat whose shopper is still waiting for an answer."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.service.schema import Handoff, Message
from bot.service.store import Store
from tests.api.conftest import AGENT_TOKEN
from tests.browser.conftest import chat
from tests.server import Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

# Counts the console's beeps: every sound it makes starts an oscillator.
COUNT_BEEPS = """
window.__beeps = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) { window.__beeps += 1; return start.apply(this, args); };
"""


@pytest.fixture()
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kefu.db'}"


@pytest.fixture()
def server(models_dir: Path, tmp_path: Path, db: str) -> Iterator[Server]:
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db, "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN}"}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def test_unread_badges_waits_and_the_confirmation(server: Server, browser: object, db: str) -> None:
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")  # type: ignore
    console = ctx.new_page()
    console.add_init_script(COUNT_BEEPS)
    dialogs: list[str] = []
    errors: list[str] = []
    console.on("pageerror", lambda e: errors.append(str(e)))

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    console.on("dialog", dismiss)
    console.goto(server.url + "/agent")
    console.get_by_label("客服令牌").fill(AGENT_TOKEN)
    console.get_by_label("客服令牌").press("Enter")  # a key press: the page may make sounds from now on
    expect(console.locator("#live")).to_have_text("实时更新中")

    # Given two shoppers in the queue, each waiting for a person's reply.
    first = chat(server, "转人工")
    second = chat(server, "人工客服")
    items = console.locator("#handoff-list .item")
    expect(items).to_have_count(2)
    expect(console).to_have_title("(2) 客服工作台")
    expect(items.first.locator(".item-reply")).to_contain_text("待回复")
    a, b = (console.locator(f'[data-handoff="{r["handoff"]["id"]}"]') for r in (first, second))

    # The agent takes the first, then looks at the second.
    a.click()
    console.get_by_role("button", name="认领").click()
    expect(console.locator("#handoff-meta")).to_contain_text("处理中")
    console.get_by_role("tab", name="等待中").click()
    b.click()
    expect(console.locator("#handoff-title")).to_have_text(f"会话 #{second['handoff']['id']}")
    beeps = console.evaluate("window.__beeps")

    # When the first shopper writes again: a badge on that chat, a beep, the count in the title, and
    # the message as the chat's last.
    chat(server, "还在吗？等好久了", first["session_id"])
    expect(console).to_have_title("(1) 新消息 · 客服工作台")
    console.get_by_role("tab", name="处理中").click()
    expect(a.locator(".unread")).to_have_text("1")
    expect(a).to_have_attribute("aria-label", re.compile("，待回复 · 不到 1 分钟，1 条新消息$"))
    expect(a.locator(".item-last")).to_have_text("还在吗？等好久了")
    assert console.evaluate("window.__beeps") == beeps + 1

    # Opening it clears the badge and the title.
    a.click()
    expect(a.locator(".unread")).to_have_count(0)
    expect(console).to_have_title("(1) 客服工作台")
    expect(console.locator("#handoff-meta")).to_contain_text("待回复")

    # Ending the chat while the shopper waits for an answer asks first; declined, nothing changes.
    with console.expect_event("dialog"):  # the question reaches the test when it is asked, not at the click
        console.get_by_role("button", name="结束会话").click()
    expect(console.locator("#handoff-meta")).to_contain_text("处理中")
    assert dialogs == ["顾客的最后一条消息还没有回复，确定要结束会话吗？"]

    # Answered, the chat shows 已回复 and ends without a question.
    reply_box = console.get_by_label("回复顾客")
    reply_box.fill("亲，在的，马上帮您看")
    reply_box.press("Control+Enter")
    expect(console.locator("#handoff-meta")).to_contain_text("已回复")
    expect(a.locator(".item-reply")).to_have_text("已回复")
    console.get_by_role("button", name="结束会话").click()
    expect(console.locator("#handoff-meta")).to_contain_text("已解决")
    assert len(dialogs) == 1

    # A shopper waiting 12 minutes stands out in the queue.
    store, then = Store(db), dt.datetime.now(dt.UTC) - dt.timedelta(minutes=12, seconds=5)
    with store.tx(write=True) as s:
        s.execute(update(Handoff).where(Handoff.id == second["handoff"]["id"]).values(created_at=then))
        s.execute(update(Message).where(Message.session_id == second["session_id"]).values(created_at=then))
    store.close()
    chat(server, "转人工")  # a new handoff: the console reads the queue again
    console.get_by_role("tab", name="等待中").click()
    expect(b).to_have_class("item item-long")
    expect(b.locator(".item-wait")).to_have_text("已等待 12 分钟")
    expect(b.locator(".item-reply")).to_have_class("item-reply awaiting late")

    # And the search finds a chat by what its shopper said.
    console.get_by_label("搜索聊天内容").fill("人工客服")
    expect(items).to_have_count(1)
    expect(b).to_be_visible()
    assert errors == []
    ctx.close()
