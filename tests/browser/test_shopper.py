"""The shopper's side of a handoff in a real browser (issue 16, item 5), on a phone (390x844) and a desktop
(1366x768): the place in the queue moves as the shoppers ahead are taken and comes back after a reload,
what the shopper writes while waiting is acknowledged once, a photo goes from the widget's image button
to the agent's console (a thumbnail that opens full size), and the agent's joining is told at once by the
shop's name for her, before she writes a word. A message written before the bot's reply comes is sent after it,
never dropped."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.api.conftest import AGENT_TOKEN
from tests.browser.conftest import ADMIN_TOKEN, Watch, agent_console, chat
from tests.server import Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
VIEWPORTS = [{"width": 390, "height": 844}, {"width": 1366, "height": 768}]


@pytest.fixture()
def named_server(models_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """A server whose agent alice is 小美 to shoppers."""
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}",
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN}", "KEFU_AGENT_NAMES": "alice:小美",
           "KEFU_ADMIN_TOKEN": ADMIN_TOKEN}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def damaged_photo(path: Path) -> Path:
    im = Image.new("RGB", (640, 480), (235, 235, 230))
    for x in range(200, 440):  # a tear across the shirt
        im.putpixel((x, 240 + (x % 7)), (40, 40, 40))
    out = path / "破洞.jpg"
    buf = io.BytesIO()
    im.save(buf, "JPEG")
    out.write_bytes(buf.getvalue())
    return out


def open_chat(page: Any, server: Server) -> tuple[Any, Any]:
    """The shop's page with its chat window open: the widget and its message box."""
    page.goto(server.url + "/")
    widget = page.locator("#kefu-widget")
    widget.get_by_role("button", name="打开在线客服").click()
    return widget, widget.get_by_role("textbox", name="输入消息")


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=["phone", "desktop"])
def test_waiting_shopper_sends_a_photo_and_hears_the_agent_join(named_server: Server, browser: Any,
                                                                 viewport: dict[str, int], tmp_path: Path) -> None:
    server = named_server
    ahead = chat(server, "转人工")  # another shopper already waits
    phone = viewport["width"] < 500
    shop_ctx = browser.new_context(viewport=viewport, locale="zh-CN", has_touch=phone, is_mobile=phone)
    shop = shop_ctx.new_page()
    shop_watch = Watch(shop)
    widget, box = open_chat(shop, server)
    status = widget.locator(".kefu-status")
    image_button = widget.get_by_role("button", name="发送图片")
    expect(image_button).to_be_hidden()  # nobody to send it to yet

    # A damaged item: the bot hands over, in one sentence; the banner holds the place.
    box.fill("收到的衣服破了个洞")
    box.press("Enter")
    bot_lines = widget.locator(".kefu-bot:not(.kefu-greeting)")
    expect(bot_lines).to_have_count(1)
    expect(bot_lines.last).to_contain_text("照片")
    assert bot_lines.last.inner_text().count("转接") == 1
    expect(status).to_have_text("正在排队等待人工客服，您前面还有 1 位")

    # The shopper ahead is taken: the place moves at once.
    assert httpx.post(f"{server.url}/v1/handoffs/{ahead['handoff']['id']}/claim", headers=ALICE).status_code == 200
    expect(status).to_have_text("正在排队等待人工客服，您是下一位")

    # Writing while waiting: one acknowledgement for the burst.
    box.fill("在吗")
    box.press("Enter")
    expect(bot_lines).to_have_count(2)
    expect(bot_lines.last).to_have_text("已收到，客服接入后会第一时间看到，请稍等哦～")
    box.fill("订单号发你了 1234567")
    box.press("Enter")
    expect(widget.locator(".kefu-shopper")).to_have_count(3)
    expect(bot_lines).to_have_count(2)

    # After a reload the conversation and the place come back.
    shop.reload()
    expect(widget.get_by_role("dialog")).to_be_visible()  # (the window stays open across a reload)
    expect(status).to_have_text("正在排队等待人工客服，您是下一位")
    expect(widget.locator(".kefu-shopper")).to_have_count(3)

    # The photo: the image button, by keyboard on the desktop and by touch on the phone.
    expect(image_button).to_be_visible()
    size = image_button.bounding_box()
    assert size["width"] >= (44 if phone else 40) and size["height"] >= (44 if phone else 38), size
    photo = damaged_photo(tmp_path)
    with shop.expect_file_chooser() as chooser:
        if phone:
            image_button.tap()
        else:
            image_button.focus()
            shop.keyboard.press("Enter")
    chooser.value.set_files(str(photo))
    sent = widget.locator(".kefu-shopper.kefu-picture img")
    expect(sent).to_have_count(1)
    expect(sent).to_have_attribute("alt", "您发送的图片")
    shop.wait_for_function("img => img.complete && img.naturalWidth === 640", arg=sent.element_handle())

    # The agent opens the chat: the photo is in the transcript, a thumbnail that opens full size.
    agent_ctx, console, agent_watch = agent_console(browser, server, AGENT_TOKEN)
    item = console.locator("#handoff-list .item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("[图片]")
    item.click()
    thumb = console.get_by_role("button", name="查看顾客发送的图片（原图）")
    expect(thumb).to_have_count(1)
    console.wait_for_function("img => img.complete && img.naturalWidth === 640",
                              arg=thumb.locator("img").element_handle())
    assert thumb.bounding_box()["width"] <= 170
    thumb.focus()
    console.keyboard.press("Enter")
    full = console.locator("#image-view img")
    expect(console.locator("#image-view")).to_be_visible()
    assert full.bounding_box()["width"] == 640
    console.keyboard.press("Escape")
    expect(console.locator("#image-view")).to_be_hidden()

    # She takes the chat: the shopper hears it by her shop name at once, before any message of hers.
    console.get_by_role("button", name="认领").click()
    expect(console.locator("#handoff-meta")).to_contain_text("处理中")
    expect(status).to_have_text("人工客服 小美 正在为您服务")
    expect(widget.locator(".kefu-joined")).to_have_text("小美 为您服务")
    expect(widget.locator(".kefu-agent")).to_have_count(0)
    assert "alice" not in widget.inner_text()
    expect(image_button).to_be_visible()  # still: the person has the chat

    shop_watch.assert_clean()
    agent_watch.assert_clean()
    shop_ctx.close()
    agent_ctx.close()


def test_the_place_after_a_reload_on_a_polling_widget(named_server: Server, browser: Any) -> None:
    """Without server-sent events (a proxy that buffers them), polling keeps the place and the join."""
    server = named_server
    ahead = chat(server, "转人工")
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    ctx.add_init_script("delete window.EventSource")
    page = ctx.new_page()
    widget, box = open_chat(page, server)
    box.fill("转人工")
    box.press("Enter")
    status = widget.locator(".kefu-status")
    expect(status).to_have_text("正在排队等待人工客服，您前面还有 1 位")
    page.reload()
    expect(status).to_have_text("正在排队等待人工客服，您前面还有 1 位")
    assert httpx.post(f"{server.url}/v1/handoffs/{ahead['handoff']['id']}/claim", headers=ALICE).status_code == 200
    expect(status).to_have_text("正在排队等待人工客服，您是下一位")  # the next poll
    mine = httpx.get(f"{server.url}/v1/handoffs?status=waiting", headers=ALICE).json()["data"]
    assert len(mine) == 1
    assert httpx.post(f"{server.url}/v1/handoffs/{mine[0]['id']}/claim", headers=ALICE).status_code == 200
    expect(status).to_have_text("人工客服 小美 正在为您服务")
    ctx.close()


def test_a_message_written_before_the_reply_comes_is_sent_after_it(named_server: Server, browser: Any) -> None:
    """A shopper who writes again while the bot is still answering is never ignored: both messages show
    at once, and the server gets them one after the other, in the order written."""
    server = named_server
    page = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN").new_page()
    watch = Watch(page)
    held: list[Any] = []  # the first message's request, kept back until the second is written

    def hold(route: Any) -> None:
        if route.request.method == "POST" and not held:
            held.append(route)
        else:
            route.continue_()

    page.route("**/v1/chat", hold)
    widget, box = open_chat(page, server)
    box.fill("你们发什么快递")
    box.press("Enter")
    mine = widget.locator(".kefu-shopper")
    expect(mine).to_have_count(1)
    expect(widget.locator(".kefu-typing")).to_be_visible()  # the first is on its way
    assert len(held) == 1

    box.fill("一般几天能到")
    box.press("Enter")
    expect(mine).to_have_count(2)
    expect(box).to_have_value("")
    expect(mine.last).to_have_text("一般几天能到")
    held[0].continue_()

    bot_lines = widget.locator(".kefu-bot:not(.kefu-greeting)")
    expect(bot_lines).to_have_count(2)
    session = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('kefu.session:'))"
                            ".map(k => localStorage.getItem(k))[0]")
    stored = httpx.get(f"{server.url}/v1/chat/{session}/messages?after=0").json()["messages"]
    assert [m["text"] for m in stored if m["role"] == "shopper"] == ["你们发什么快递", "一般几天能到"]
    assert [m["role"] for m in stored] == ["shopper", "bot", "shopper", "bot"]
    watch.assert_clean()
