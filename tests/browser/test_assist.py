"""The agents' help in a real browser: the bot's answer as a draft the agent edits and sends, a
快捷短语 found by keyword, a transfer to a colleague with a note (who gets a badge, a notice and the
note in the transcript), and the shopper seeing each agent by the display name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.browser.conftest import ADMIN_TOKEN, Watch, agent_console, chat, shot
from tests.browser.test_contrast import low_contrast
from tests.server import ROOT, Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


@pytest.fixture()
def server(models_dir: Path, tmp_path: Path) -> Iterator[Server]:
    phrases = tmp_path / "phrases.yml"  # the shop's phrases, which the manager edits here
    phrases.write_bytes((ROOT / "data" / "phrases.yml").read_bytes())
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}",
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN}", "KEFU_AGENT_NAMES": "alice:小美,bob:阿强",
           "KEFU_ADMIN_TOKEN": ADMIN_TOKEN, "KEFU_PHRASES_FILE": str(phrases)}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_a_draft_a_phrase_and_a_transfer(server: Server, browser: Any, viewport: dict[str, int]) -> None:
    # Given a complaint in the queue, and alice and bob at their consoles.
    first = chat(server, "我要投诉你们的客服")
    sid, hid = first["session_id"], first["handoff"]["id"]
    alice_ctx, alice, alice_watch = agent_console(browser, server, AGENT_TOKEN, viewport)
    bob_ctx, bob, bob_watch = agent_console(browser, server, OTHER_TOKEN, viewport)
    expect(alice.locator("#agent-name")).to_have_text("客服：alice（小美）")
    item = alice.locator(f'[data-handoff="{hid}"]')
    item.click()
    alice.get_by_role("button", name="认领").click()
    expect(alice.locator("#handoff-meta")).to_contain_text("处理中")

    # When the shopper asks something the bot knows, its answer is a draft, one click from the reply box.
    chat(server, "那今天下单什么时候能发货", sid)
    expect(alice.locator("#transcript .msg-shopper .msg-text").last).to_have_text("那今天下单什么时候能发货")
    draft = alice.locator("#drafts .draft").first
    expect(draft).to_have_attribute("title", re.compile("16:00"))  # the whole answer; the chip shows its title
    if viewport["width"] > 1000:
        shot(alice, "agent-drafts.png")
    draft.click()
    box = alice.get_by_label("回复顾客")
    expect(box).to_be_focused()
    expect(box).to_have_value(re.compile("16:00"))
    # The agent edits it before sending: nothing went out on the click.
    assert [m for m in history(server, sid) if m["role"] == "agent"] == []
    box.press("End")
    box.type("有问题随时找我")
    box.press("Control+Enter")
    expect(alice.locator("#transcript .msg-agent")).to_have_count(1)
    sent = [m for m in history(server, sid) if m["role"] == "agent"]
    assert len(sent) == 1 and "16:00" in sent[0]["text"] and sent[0]["text"].endswith("有问题随时找我")
    assert sent[0]["author"] == "小美"  # the shopper sees the display name, not alice

    # A 快捷短语, found by a keyword in traditional characters, goes into the reply box filled in.
    alice.get_by_role("button", name="快捷短语").click()
    search = alice.get_by_label("搜索快捷短语")
    expect(search).to_be_focused()
    search.fill("退貨")
    expect(alice.locator("#phrase-list .phrase-title")).to_have_text(["退货地址", "七天无理由"])
    search.press("Enter")
    expect(alice.locator("#phrases")).to_be_hidden()
    expect(box).to_have_value(re.compile("^亲，退货请寄到：浙江省杭州市余杭区"))
    box.fill("")
    alice.get_by_role("button", name="快捷短语").click()
    alice.get_by_label("搜索快捷短语").press("Escape")
    expect(alice.get_by_role("button", name="快捷短语")).to_be_focused()

    # Alice gives the chat to bob with a note.
    alice.get_by_role("button", name="转交", exact=True).click()
    expect(alice.get_by_label("转交给")).to_have_value("bob")
    expect(alice.locator("#transfer-to option")).to_have_text(["bob（阿强） · 在线（0 个会话）"])  # his console is open
    alice.get_by_label("转交备注").fill("顾客想确认发货时间，已回复")
    alice.get_by_role("button", name="确认转交").click()
    expect(alice.locator("#notice")).to_have_text(f"已将会话 #{hid} 转交给bob（阿强）")
    expect(alice.locator("#reply-form")).to_be_hidden()
    expect(alice.locator("#action-error")).to_have_text("该会话已由 bob 处理")

    # Then bob is told, with a badge on the chat, and finds the note in the transcript.
    expect(bob.locator("#notice")).to_have_text(f"“alice（小美）”转交给您会话 #{hid}：顾客想确认发货时间，已回复")
    expect(bob).to_have_title("(1) 新消息 · 客服工作台")
    bob.get_by_role("tab", name="处理中").click()
    mine = bob.locator(f'[data-handoff="{hid}"]')
    expect(mine.locator(".unread")).to_have_text("1")
    mine.click()
    note = bob.locator("#transcript .msg-transfer")
    expect(note).to_contain_text("alice（小美） → bob（阿强）")
    expect(note.locator(".msg-text")).to_have_text("顾客想确认发货时间，已回复")
    reply = bob.get_by_label("回复顾客")
    reply.fill("亲，我是阿强，接着为您服务")
    reply.press("Control+Enter")
    expect(bob.locator("#transcript .msg-agent")).to_have_count(2)
    shown = history(server, sid)
    assert [m["author"] for m in shown if m["role"] == "agent"] == ["小美", "阿强"]
    assert all("确认发货时间" not in m["text"] for m in shown) and "transfer" not in {m["role"] for m in shown}
    alice_watch.assert_clean()
    bob_watch.assert_clean()
    alice_ctx.close()
    bob_ctx.close()


def history(srv: Server, session_id: str) -> list[dict[str, Any]]:
    r = httpx.get(srv.url + f"/v1/chat/{session_id}/messages", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["messages"]  # type: ignore[no-any-return]


def test_the_manager_adds_a_phrase_agents_then_find(server: Server, browser: Any) -> None:
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(server.url + "/admin")
    page.get_by_label("管理员令牌").fill(ADMIN_TOKEN)
    page.get_by_label("管理员令牌").press("Enter")
    page.get_by_role("tab", name="知识库").click()
    page.get_by_role("tab", name="快捷短语").click()
    rows = page.locator("#phrase-rows .phrase-row")
    expect(rows).to_have_count(8)
    expect(rows.first.get_by_label("标题")).to_have_value("欢迎")
    assert low_contrast(page) == []  # WCAG AA, as the other tabs
    # The manager adds one, with the shop's placeholder, and saves.
    page.get_by_role("button", name="添加一条").click()
    new = rows.last
    expect(new.get_by_label("标题")).to_be_focused()
    new.get_by_label("标题").fill("晒图返现")
    new.get_by_label("关键词（用逗号分开）").fill("返现，晒图")
    new.get_by_label("内容").fill("亲，在{name}收货后晒图好评，联系客服领5元返现哦～")
    page.get_by_role("button", name="保存快捷短语").click()
    expect(page.locator("#phrases-status")).to_have_text("已保存，客服下次搜索即可用到")
    # Then agents find it by a keyword, filled.
    agent = {"Authorization": f"Bearer {AGENT_TOKEN}"}
    found = httpx.get(server.url + "/v1/phrases", params={"q": "返现"}, headers=agent)
    assert [p["text"] for p in found.json()["data"]] == ["亲，在小鲸鱼服饰旗舰店收货后晒图好评，联系客服领5元返现哦～"]
    # A placeholder the shop does not have is refused, with what to fix.
    new.get_by_label("内容").fill("亲，{shop.nowhere}")
    page.get_by_role("button", name="保存快捷短语").click()
    expect(page.locator("#phrases-error")).to_contain_text("保存失败")
    watch.assert_clean()
    ctx.close()
