"""The whole story in a real browser: a shopper on the demo shop chats with the widget, asks for a
person, an agent in the console takes the handoff, answers and resolves it.

Drives Debian's chromium (`make test` installs it; never `playwright install`) against a real
server process with a model trained on data/faq. KEFU_SCREENSHOTS=1 also writes docs/widget.png and
docs/console.png.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN
from tests.browser.conftest import ADMIN_TOKEN, Watch, shot
from tests.server import Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

XSS = "<img src=x onerror=alert(1)>"
AGENT_REPLY = "亲，我是客服小美，已经帮您查到啦，订单今天下午就发出～"


def figures(server: Server) -> dict:  # type: ignore[type-arg]
    """The shop's figures of the last days (GET /v1/admin/stats)."""
    return httpx.get(server.url + "/v1/admin/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()


def test_shopper_and_agent_story(server: Server, browser: object, kb: object) -> None:
    widget_cfg = httpx.get(server.url + "/v1/widget").json()
    answer = kb.answer("shipping.when")  # type: ignore[attr-defined]

    # The agent signs in first, to an empty queue.
    agent_ctx = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")  # type: ignore
    console = agent_ctx.new_page()
    agent_watch = Watch(console)
    console.goto(server.url + "/agent")
    console.get_by_label("客服令牌").fill("wrong-token-123")
    console.get_by_role("button", name="登录").click()
    expect(console.get_by_role("alert").first).to_contain_text("令牌不正确")
    console.get_by_label("客服令牌").fill(AGENT_TOKEN)
    console.get_by_label("客服令牌").press("Enter")
    expect(console.locator("#live")).to_have_text("实时更新中")
    expect(console.locator("#agent-name")).to_contain_text("alice")
    expect(console.locator("#empty")).to_be_visible()
    expect(console).to_have_title("客服工作台")

    # The shopper opens the shop and the widget, and is greeted at once.
    shop_ctx = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")  # type: ignore
    shop = shop_ctx.new_page()
    shop_watch = Watch(shop)
    shop.goto(server.url + "/")
    expect(shop.get_by_role("heading", level=1)).to_contain_text("T恤")
    widget = shop.locator("#kefu-widget")
    shop.get_by_role("button", name="打开在线客服").click()
    panel = widget.get_by_role("dialog")
    expect(panel).to_be_visible()
    expect(widget.locator(".kefu-greeting")).to_have_text(widget_cfg["greeting"])
    for label in ("尺码", "发货", "付款", "退换货"):
        expect(widget.locator(".kefu-quick").get_by_role("button", name=label)).to_be_visible()
    message_box = widget.get_by_role("textbox", name="输入消息")
    expect(message_box).to_be_focused()

    # An FAQ question, sent with Enter, is answered by the bot.
    message_box.fill("什么时候发货")
    message_box.press("Enter")
    expect(widget.locator(".kefu-shopper")).to_have_text(["什么时候发货"])
    bot_replies = widget.locator(".kefu-bot:not(.kefu-greeting)")
    expect(bot_replies).to_have_count(1)
    expect(bot_replies.last).to_contain_text(answer.splitlines()[0])
    expect(message_box).to_have_value("")

    # Under the answer: 有帮助 / 没帮助, one tap, and a second tap changes it.
    votes = widget.locator(".kefu-feedback").last
    votes.get_by_role("button", name="没帮助").click()
    expect(votes.get_by_role("button", name="没帮助")).to_have_attribute("aria-pressed", "true")
    votes.get_by_role("button", name="有帮助").click()
    expect(votes.get_by_role("button", name="有帮助")).to_have_attribute("aria-pressed", "true")
    expect(votes.get_by_role("button", name="没帮助")).to_have_attribute("aria-pressed", "false")

    # 转人工: the queue message, and the handoff appears in the console without a reload.
    widget.get_by_role("button", name="转人工客服").click()
    expect(widget.locator(".kefu-shopper").last).to_have_text("转人工")
    expect(widget.locator(".kefu-status")).to_contain_text("排队")
    expect(bot_replies).to_have_count(2)
    expect(console).to_have_title("(1) 客服工作台")
    item = console.locator("#handoff-list .item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text("顾客要求人工")
    expect(item).to_contain_text("转人工")
    expect(item).to_contain_text("已等待")

    # The agent opens it: transcript and the bot's guesses with probabilities; claims and replies.
    item.click()
    transcript = console.locator("#transcript")
    expect(transcript).to_contain_text("什么时候发货")
    expect(transcript).to_contain_text("转人工")
    expect(console.locator("#guesses li").first).to_contain_text("%")
    expect(console.locator("#handoff-meta")).to_contain_text("等待中")
    console.get_by_role("button", name="认领").click()
    expect(console.locator("#handoff-meta")).to_contain_text("处理中")
    expect(console.get_by_role("button", name="认领")).to_be_hidden()
    expect(console).to_have_title("客服工作台")
    reply_box = console.get_by_label("回复顾客")
    expect(reply_box).to_be_focused()
    reply_box.fill(AGENT_REPLY)
    reply_box.press("Control+Enter")
    expect(transcript.locator(".msg-agent")).to_contain_text(AGENT_REPLY)

    # The shopper sees the agent's reply arrive (server-sent events).
    agent_msgs = widget.locator(".kefu-agent")
    expect(agent_msgs).to_have_count(1)
    expect(agent_msgs).to_contain_text(AGENT_REPLY)
    expect(widget.locator(".kefu-status")).to_contain_text("alice")
    shot(shop, "widget.png")

    # Markup from the shopper is text, in the widget and in the console; no script runs.
    message_box.fill(XSS)
    message_box.press("Enter")
    expect(widget.locator(".kefu-shopper").last).to_have_text(XSS)
    expect(transcript.locator(".msg-shopper .msg-text").last).to_have_text(XSS)  # live in the open handoff
    expect(widget.locator("img")).to_have_count(0)
    expect(transcript.locator("img")).to_have_count(0)
    expect(console.locator("#handoff-list img")).to_have_count(0)
    shot(console, "console.png")

    # The agent answers the shopper's last message (ending a chat with a question unanswered would
    # ask first), then resolves with a label; the shopper is told, and the bot takes over again.
    reply_box.fill("收到，已经帮您记下了")
    reply_box.press("Control+Enter")
    expect(console.locator("#handoff-meta")).to_contain_text("已回复")
    console.get_by_label("问题类型（用于训练）").select_option("shipping.when")
    console.get_by_label("备注（可选）").fill("顾客催发货，已确认今天发出")
    console.get_by_role("button", name="结束会话").click()
    expect(console.locator("#handoff-meta")).to_contain_text("已解决")
    expect(console.locator("#handoff-meta")).to_contain_text("shipping.when")
    expect(console.locator("#reply-form")).to_be_hidden()
    expect(widget.locator(".kefu-system")).to_have_count(1)
    expect(widget.locator(".kefu-status")).to_be_hidden()
    resolved = httpx.get(server.url + "/v1/handoffs", params={"status": "resolved"},
                         headers={"Authorization": f"Bearer {AGENT_TOKEN}"}).json()["data"]
    assert [(h["label"], h["agent"]) for h in resolved] == [("shipping.when", "alice")]

    # The shopper is asked to rate the service, and does (the button is enabled once a score is chosen).
    rating = widget.locator(".kefu-rating")
    expect(rating).to_contain_text("请为本次人工服务打个分吧")
    expect(rating.get_by_role("button", name="提交评价")).to_be_disabled()
    rating.get_by_role("button", name="非常满意").click()
    rating.get_by_role("textbox").fill("回复很快")
    rating.get_by_role("button", name="提交评价").click()
    expect(widget.locator(".kefu-note")).to_contain_text("感谢")
    expect(rating).to_have_count(0)
    got = figures(server)
    assert (got["feedback"], got["ratings"]["5"], got["satisfaction_rate"]) == ({"helpful": 1, "unhelpful": 0}, 1, 1.0)
    assert got["handed_off"] == 1 and got["agents"][0]["agent"] == "alice"

    # A reload keeps the conversation: the same messages, once each.
    shop.reload()
    expect(widget.get_by_role("dialog")).to_be_visible()  # it was open: it stays open
    expect(widget.locator(".kefu-shopper")).to_have_text(["什么时候发货", "转人工", XSS])
    expect(widget.locator(".kefu-agent")).to_have_text([f"人工客服 alice{AGENT_REPLY}",
                                                        "人工客服 alice收到，已经帮您记下了"])
    expect(widget.locator(".kefu-system")).to_have_count(1)
    expect(widget.locator(".kefu-rating")).to_have_count(0)  # not asked again
    expect(widget.locator("img")).to_have_count(0)

    shop_watch.assert_clean()
    agent_watch.assert_clean()
    shop_ctx.close()
    agent_ctx.close()


def test_keyboard_only_and_polling_fallback(server: Server, browser: object) -> None:
    """Without server-sent events the widget polls; the keyboard alone opens, uses and closes it."""
    ctx = browser.new_context(viewport={"width": 390, "height": 780}, locale="zh-CN")  # type: ignore
    page = ctx.new_page()
    watch = Watch(page)
    page.route("**/events", lambda route: route.fulfill(status=503, body="no streams here"))
    page.goto(server.url + "/")
    widget = page.locator("#kefu-widget")
    launcher = widget.get_by_role("button", name="打开在线客服")
    expect(launcher).to_be_visible()
    launcher.focus()
    page.keyboard.press("Enter")
    box = widget.get_by_role("textbox", name="输入消息")
    expect(box).to_be_focused()
    page.keyboard.type("我要投诉，你们发错货了")
    page.keyboard.press("Enter")
    expect(widget.locator(".kefu-status")).to_contain_text("排队")

    # An agent answers over the API; the widget polls and shows it.
    handoffs = httpx.get(server.url + "/v1/handoffs", params={"status": "waiting"},
                         headers={"Authorization": f"Bearer {AGENT_TOKEN}"}).json()
    assert handoffs["count"] == 1, handoffs
    r = httpx.post(f"{server.url}/v1/handoffs/{handoffs['data'][0]['id']}/messages", json={"text": "亲，非常抱歉！"},
                   headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    assert r.status_code == 200
    expect(widget.locator(".kefu-agent")).to_contain_text("亲，非常抱歉！")

    # The agent ends the chat; the shopper rates it with the keyboard alone, on a phone.
    r = httpx.post(f"{server.url}/v1/handoffs/{handoffs['data'][0]['id']}/resolve", json={},
                   headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    assert r.status_code == 200
    score = widget.locator(".kefu-rating").get_by_role("button", name="不满意", exact=True)
    expect(score).to_be_visible()
    for _ in range(40):  # back from the message box to the rating, one Shift+Tab at a time
        if score.evaluate("b => b.getRootNode().activeElement === b"):
            break
        page.keyboard.press("Shift+Tab")
    expect(score).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past 一般, 满意, 非常满意 to the comment
    page.keyboard.type("发错货太耽误事了")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(widget.locator(".kefu-note")).to_contain_text("感谢")
    got = figures(server)
    assert got["ratings"]["2"] == 1 and got["satisfaction_rate"] == 0.0
    assert got["handoff_reasons"]["complaint"] == 1

    page.keyboard.press("Escape")
    expect(widget.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_be_focused()
    watch.assert_clean()
    ctx.close()


def test_api_docs_render_offline_under_the_csp(server: Server, browser: object) -> None:
    """Swagger UI comes from kefu itself (closed networks have no CDN) and runs under the strict CSP."""
    context = browser.new_context()  # type: ignore[attr-defined]
    outside: list[str] = []
    context.route("**/*", lambda route: (outside.append(route.request.url), route.abort())
                  if not route.request.url.startswith(server.url) else route.continue_())
    page = context.new_page()
    watch = Watch(page)
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("kefu")
    expect(page.locator(".opblock-summary-path", has_text="/v1/chat").first).to_be_visible()
    page.locator(".opblock-summary", has_text="/v1/chat").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    watch.assert_clean()
    assert outside == []
    context.close()
