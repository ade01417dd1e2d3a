"""WCAG AA, measured in the browser (issue 16, item 6): every visible text in the shopper's widget, the
agent console and the manager's console at 4.5:1 against what it sits on (3:1 when large), every
text field's border at 3:1, and on every keyboard stop a focus ring of at least 2px, at 3:1 against
what is around it, not cut by a scrolling or clipping box. And the agent console fits 1366x768: an
open chat's 发送 and 结束会话 are on screen without scrolling.

The colours are the ones Chromium computes, after the style sheets, with the opacity of the node and
its parents; the background is the first opaque one behind the node (through the widget's shadow
root to the page), a gradient or an image without a colour under it is not measured.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.api.conftest import AGENT_TOKEN
from tests.browser.conftest import ADMIN_TOKEN, Watch
from tests.server import Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

WIDGET = "document.querySelector('#kefu-widget').shadowRoot"
UNSURE = "码"  # the bot is unsure: a line and three chips of what it could be

# WCAG 2's colour arithmetic: relative luminance, contrast ratio, alpha blending, and the colour
# behind a node (its own and its parents' backgrounds, out of a shadow root to the page's).
COLOURS_JS = """
  const rgba = s => { const p = (s.match(/[\\d.]+/g) || [0, 0, 0, 0]).map(Number);
                      return {rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1}; };
  const lin = x => (x /= 255) <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  const lum = c => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const blend = (c, base) => base.map((v, k) => c.rgb[k] * c.a + v * (1 - c.a));
  const up = n => n.parentElement || (n.getRootNode() instanceof ShadowRoot ? n.getRootNode().host : null);
  // The opaque colour behind a node, and the opacity its text is drawn with; null over a picture.
  const behind = node => {
    const layers = [];
    let opacity = 1;
    for (let n = node; n; n = up(n)) {
      const s = getComputedStyle(n), c = rgba(s.backgroundColor);
      if (s.backgroundImage !== "none" && c.a < 1) return null;
      if (c.a > 0) { layers.push(c); if (c.a >= 1) break; }
      opacity *= Number(s.opacity);
    }
    return {rgb: layers.reverse().reduce((base, c) => blend(c, base), [255, 255, 255]), opacity};
  };
  const name = n => `${n.tagName.toLowerCase()}${n.className && typeof n.className === "string"
    ? "." + n.className.trim().split(/\\s+/).join(".") : ""} "${(n.value || n.textContent || n.placeholder
    || n.getAttribute("aria-label") || "").trim().slice(0, 16)}"`;
"""

# Every visible text of a document or shadow root: its ratio and what AA asks of it (3 if large).
TEXTS_JS = "root => {" + COLOURS_JS + """
  const texts = [];
  const field = n => n.matches("textarea, select, input:not([type=checkbox]):not([type=radio])"
                               + ":not([type=range]):not([type=hidden])");
  for (const n of root.querySelectorAll("*")) {
    const s = getComputedStyle(n);
    if (!n.getClientRects().length || s.visibility !== "visible" || n.closest(":disabled, option, svg")) continue;
    const own = [...n.childNodes].some(t => t.nodeType === 3 && t.textContent.trim());
    const colours = [];
    if (own) colours.push(["text", s.color]);
    if (field(n)) {
      if (n.value) colours.push(["value", s.color]);
      else if (n.placeholder) colours.push(["placeholder", getComputedStyle(n, "::placeholder").color]);
    }
    const bg = behind(n);
    if (!bg) continue;
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const want = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    for (const [kind, colour] of colours) {
      const c = rgba(colour);
      c.a *= bg.opacity;
      texts.push({what: `${name(n)} ${kind}`, ratio: ratio(blend(c, bg.rgb), bg.rgb), want});
    }
    // A text field's edge is what shows where to type: 3:1 against what is around it.
    if (field(n) && parseFloat(s.borderBottomWidth) > 0) {
      const around = behind(up(n));
      if (around) texts.push({what: `${name(n)} border`, want: 3,
                              ratio: ratio(blend(rgba(s.borderBottomColor), around.rgb), around.rgb)});
    }
  }
  return texts;
}"""

# The focused control (inside the widget's shadow root too): its ring, the ring's contrast with what
# it is drawn on, and the boxes that cut it (an overflow other than visible between it and the page).
FOCUS_JS = "async () => {" + COLOURS_JS + """
  // Measured after two frames: the scroll that brings a focused control into view may land a frame
  // after the focus (a ring measured before it looks cut by the window's edge).
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  if (!el || el === document.body) return null;
  if (!el.dataset.a11yStop) el.dataset.a11yStop = String(document.querySelectorAll("[data-a11y-stop]").length
    + (document.querySelector("#kefu-widget")?.shadowRoot?.querySelectorAll("[data-a11y-stop]").length || 0));
  const s = getComputedStyle(el), r = el.getBoundingClientRect();
  const out = {what: name(el), stop: el.dataset.a11yStop, inWidget: el.getRootNode() instanceof ShadowRoot,
               ring: null, clipped: []};
  let colour = null, grow = 0, inside = false;
  if (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2) {
    colour = s.outlineColor;
    grow = parseFloat(s.outlineOffset) + parseFloat(s.outlineWidth);
    inside = parseFloat(s.outlineOffset) < 0;
    out.ring = `outline ${s.outlineWidth} ${s.outlineColor} offset ${s.outlineOffset}`;
  } else if (s.boxShadow !== "none") {
    for (const shadow of s.boxShadow.split(/,(?![^(]*\\))/)) {
      const c = shadow.match(/rgba?\\([^)]*\\)/), px = (shadow.replace(/rgba?\\([^)]*\\)/, "").match(/-?[\\d.]+px/g)
        || []).map(parseFloat);
      if (c && px.length >= 4 && px[2] === 0 && px[3] >= 2 && rgba(c[0]).a >= 1) {
        colour = c[0];
        inside = /inset/.test(shadow);
        grow = inside ? 0 : px[3];
        out.ring = `box-shadow ${shadow.trim()}`;
        break;
      }
    }
  }
  if (!colour) return out;
  const bg = behind(inside ? el : up(el));
  out.ratio = bg ? ratio(rgba(colour).rgb, bg.rgb) : null;
  // A box cuts the ring where the control fits in it but its ring does not (a control larger than the
  // box, like a long panel in the window, shows the part of its ring that is scrolled to).
  const ring = {left: r.left - grow, top: r.top - grow, right: r.right + grow, bottom: r.bottom + grow};
  const cuts = (left, top, width, height) =>
    (r.width <= width && (ring.left < left - 0.5 || ring.right > left + width + 0.5))
    || (r.height <= height && (ring.top < top - 0.5 || ring.bottom > top + height + 0.5));
  for (let n = up(el); n && n !== document.body && n !== document.documentElement; n = up(n)) {
    const ns = getComputedStyle(n);
    if (ns.overflowX === "visible" && ns.overflowY === "visible") continue;
    const b = n.getBoundingClientRect();
    if (cuts(b.left + n.clientLeft, b.top + n.clientTop, n.clientWidth, n.clientHeight)) out.clipped.push(name(n));
  }
  if (cuts(0, 0, innerWidth, innerHeight)) out.clipped.push("the window");
  return out;
}"""


def low_contrast(page: Any, root: str = "document", at_least: int = 5) -> list[str]:
    """The texts of a document (or the widget's shadow root) under AA, as readable lines."""
    texts = page.evaluate_handle(f"() => {root}").evaluate(TEXTS_JS)
    assert len(texts) >= at_least, texts  # the page was measured, not an empty one
    return [f"{t['what']} {t['ratio']:.2f} < {t['want']}" for t in texts if t["ratio"] < t["want"] - 0.005]


def bad_rings(page: Any, stops: int, in_widget: bool = False) -> tuple[list[str], set[str]]:
    """Tab on (at most `stops` times) until the focus comes back to a control it has been on, round
    the page; every focused control's ring problems, and the controls reached."""
    bad: list[str] = []
    seen: set[str] = set()
    last = None
    for _ in range(stops):
        page.keyboard.press("Tab")
        f = page.evaluate(FOCUS_JS)
        if f is None or f["stop"] == last:  # out of the page, or on within a date field's parts
            continue
        if f["stop"] in seen:
            break
        last = f["stop"]
        if f["inWidget"] != in_widget:
            continue
        seen.add(f["stop"])
        if f["ring"] is None:
            bad.append(f"{f['what']}: no focus ring of 2px or more")
        elif f["ratio"] is None or f["ratio"] < 3:
            bad.append(f"{f['what']}: {f['ring']} at {f['ratio']} (3 wanted)")
        if f["clipped"]:
            bad.append(f"{f['what']}: {f['ring']} cut by {f['clipped']}")
    return bad, seen


def handoff_with_history(server: Server, shopper_lines: int = 3) -> int:
    """A shopper asks, is answered, asks for a person and writes on; the handoff's id."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/v1/chat", json={"message": "什么时候发货"}).json()
        sid = r["session_id"]
        r = http.post("/v1/chat", json={"session_id": sid, "message": "转人工"}).json()
        hid = int(r["handoff"]["id"])
        for k in range(shopper_lines):
            http.post("/v1/chat", json={"session_id": sid, "message": f"第{k + 1}件：我的订单还没发货，能帮我看看吗"})
    return hid


def sign_in_agent(page: Any, server: Server) -> None:
    page.goto(server.url + "/agent")
    page.get_by_label("客服令牌").fill(AGENT_TOKEN)
    page.get_by_label("客服令牌").press("Enter")
    expect(page.locator("#live")).to_have_text("实时更新中")


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_widget_contrast_and_focus(server: Server, browser: Any, viewport: dict[str, int]) -> None:
    ctx = browser.new_context(viewport=viewport, locale="zh-CN")
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(server.url + "/")
    widget = page.locator("#kefu-widget")
    launcher = widget.get_by_role("button", name="打开在线客服")
    expect(launcher).to_be_visible()
    assert low_contrast(page, WIDGET, at_least=1) == []  # closed: the launcher

    # Open, a question the bot is unsure of (chips), an answer with its votes, a person asked for.
    launcher.click()
    box = widget.get_by_role("textbox", name="输入消息")
    box.fill(UNSURE)
    box.press("Enter")
    expect(widget.locator(".kefu-suggestions .kefu-chip")).to_have_count(3)
    box.fill("什么时候发货")
    box.press("Enter")
    expect(widget.locator(".kefu-feedback").last).to_be_visible()
    widget.locator(".kefu-feedback").last.get_by_role("button").first.click()  # a pressed vote
    box.fill("转人工")
    box.press("Enter")
    expect(widget.locator(".kefu-status")).to_contain_text("排队")
    low = low_contrast(page, WIDGET)
    assert low == [], low
    # An agent takes the chat: the join told in the chat and the banner; the image button beside the box.
    waiting = httpx.get(server.url + "/v1/handoffs?status=waiting", headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    hid = waiting.json()["data"][0]["id"]
    httpx.post(f"{server.url}/v1/handoffs/{hid}/claim", headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    expect(widget.locator(".kefu-joined")).to_have_text("alice 为您服务")
    expect(widget.get_by_role("button", name="发送图片")).to_be_visible()
    low = low_contrast(page, WIDGET)
    assert low == [], low

    # Every keyboard stop of the widget, Tab by Tab round the page.
    page.evaluate("() => document.activeElement.blur()")
    controls = widget.locator("button:visible, textarea:visible, [tabindex='0']:visible").count()
    bad, seen = bad_rings(page, controls + 40, in_widget=True)
    assert bad == [], bad
    assert len(seen) >= controls, (len(seen), controls)
    watch.assert_clean()
    ctx.close()


def test_agent_console_contrast_focus_and_fit(server: Server, browser: Any) -> None:
    """1366x768 with a long chat open: AA texts and rings, and 发送 and 结束会话 on screen."""
    hid = handoff_with_history(server, shopper_lines=12)
    sid = httpx.get(f"{server.url}/v1/handoffs/{hid}", headers={"Authorization": f"Bearer {AGENT_TOKEN}"}).json()
    png = io.BytesIO()
    Image.new("RGB", (300, 200), (90, 120, 160)).save(png, "PNG")
    httpx.post(f"{server.url}/v1/chat/{sid['session_id']}/images", content=png.getvalue())  # a thumbnail to reach
    handoff_with_history(server, shopper_lines=1)  # a second one waiting in the queue
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(server.url + "/agent")
    low = low_contrast(page)  # the sign-in card
    assert low == [], low
    sign_in_agent(page, server)
    expect(page.locator("#handoff-list .item")).to_have_count(2)
    page.locator(f"#handoff-list .item[data-handoff='{hid}']").click()
    page.get_by_role("button", name="认领").click()
    expect(page.locator("#handoff-meta")).to_contain_text("处理中")
    reply = page.get_by_label("回复顾客")
    reply.fill("亲，您的订单今天发出")
    reply.press("Control+Enter")
    expect(page.locator("#transcript .msg-agent")).to_have_count(1)
    expect(page.locator("#reply-text")).to_have_value("")

    # The fit: nothing scrolled, the two buttons inside the window and inside the detail pane.
    assert page.evaluate("() => [scrollY, document.querySelector('#detail').scrollTop]") == [0, 0]
    pane = page.locator("#detail").bounding_box()
    for button in (page.locator("#reply-form").get_by_role("button", name="发送"),
                   page.get_by_role("button", name="结束会话")):
        expect(button).to_be_visible()
        b = button.bounding_box()
        assert b["y"] >= 0 and b["y"] + b["height"] <= 768 and b["x"] + b["width"] <= 1366, b
        assert b["y"] + b["height"] <= pane["y"] + pane["height"], (b, pane)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366

    low = low_contrast(page)
    assert low == [], low
    page.get_by_role("tab", name="处理中").click()
    expect(page.locator("#handoff-list .item")).to_have_count(1)
    low = low_contrast(page)
    assert low == [], low

    # Every keyboard stop, Tab by Tab round the page: the header, the queue, the chat.
    page.evaluate("() => document.activeElement.blur()")
    bad, seen = bad_rings(page, 60)
    assert bad == [], bad
    assert len(seen) >= 9, seen  # 退出, the tab, an item, the transcript, the reply and the resolve forms
    watch.assert_clean()
    ctx.close()


def test_manager_console_contrast_and_focus(server: Server, browser: Any) -> None:
    handoff_with_history(server, shopper_lines=1)
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(server.url + "/admin")
    low = low_contrast(page)
    assert low == [], low
    page.get_by_label("管理员令牌").fill(ADMIN_TOKEN)
    page.get_by_label("管理员令牌").press("Enter")
    for tab in ("未识别问题", "知识库", "命中测试", "训练与发布", "数据看板"):
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_role("tabpanel", name=tab)).to_be_visible()
        page.wait_for_load_state("networkidle")
        if tab == "知识库":
            page.locator(".entry-item").first.click()
            expect(page.locator("#entry-heading")).to_be_focused()  # the entry is open (it loads after the click)
        low = low_contrast(page)
        assert low == [], (tab, low)
        page.get_by_role("tab", name=tab).focus()
        bad, seen = bad_rings(page, 60)
        assert bad == [], (tab, bad)
        assert len(seen) >= 3, (tab, seen)
    watch.assert_clean()
    ctx.close()


def test_the_shops_accent_colour_is_the_widgets(server: Server, browser: Any) -> None:
    """`data-accent` on the script tag colours the launcher and the header (the style sheet's default
    used to win over it)."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    shop = ('<!doctype html><html lang="zh-CN"><body><p>小店</p>'
            '<script src="/static/kefu-widget.js" data-accent="#7a1f9c" defer></script></body></html>')
    page.route(server.url + "/accent-shop", lambda route: route.fulfill(status=200, content_type="text/html",
                                                                       body=shop))
    page.goto(server.url + "/accent-shop")
    launcher = page.locator("#kefu-widget").get_by_role("button", name="打开在线客服")
    expect(launcher).to_be_visible()
    expect(launcher).to_have_css("background-color", "rgb(122, 31, 156)")
    launcher.click()
    expect(page.locator("#kefu-widget .kefu-header")).to_have_css("background-color", "rgb(122, 31, 156)")
    ctx.close()
