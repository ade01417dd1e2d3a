"""数据看板 in a real browser: shoppers chat, rate and buy; the manager reads the figures, on a desktop
with the mouse and on a phone with the keyboard alone, and downloads them as CSV."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN
from tests.browser.conftest import Watch, shot
from tests.server import Server

pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ADMIN_TOKEN = "admin-token-dashboard-0123456789"
ORDER_TOKEN = "checkout-token-dashboard-0123"
ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}


@pytest.fixture()
def server(models_dir: Path, tmp_path: Path) -> Iterator[Server]:
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}",
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN}", "KEFU_ADMIN_TOKEN": ADMIN_TOKEN,
           "KEFU_ORDER_TOKEN": ORDER_TOKEN}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def a_day_of_shoppers(server: Server) -> None:
    """Three shoppers: one answered and pleased, one answered and not, one served by alice who buys."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for text, helpful in (("什么时候发货", True), ("退货运费谁出", False)):
            r = http.post("/v1/chat", json={"message": text}).json()
            assert r["action"] == "answer", r
            fb = http.post(f"/v1/chat/{r['session_id']}/feedback", json={"message_id": r["message_id"],
                                                                         "helpful": helpful})
            assert fb.status_code == 200
        r = http.post("/v1/chat", json={"message": "转人工"}).json()
        hid, sid = r["handoff"]["id"], r["session_id"]
        assert http.post(f"/v1/handoffs/{hid}/messages", json={"text": "您好"}, headers=ALICE).status_code == 200
        assert http.post(f"/v1/handoffs/{hid}/resolve", json={}, headers=ALICE).status_code == 200
        assert http.post(f"/v1/chat/{sid}/rating", json={"score": 4}).status_code == 200
        order = {"session_id": sid, "order_id": "DD-1", "amount": "88.00"}
        checkout = {"Authorization": f"Bearer {ORDER_TOKEN}"}
        assert http.post("/v1/orders", json=order, headers=checkout).status_code == 201


def card(page: object, label: str) -> object:
    return page.locator(".cards .card", has_text=label)  # type: ignore[attr-defined]


def test_the_manager_reads_the_days_figures(server: Server, browser: object, kb: object, tmp_path: Path) -> None:
    a_day_of_shoppers(server)

    # Desktop, with the mouse.
    ctx = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN",  # type: ignore
                              accept_downloads=True)
    page = ctx.new_page()
    watch = Watch(page)
    page.goto(server.url + "/admin")
    page.get_by_label("管理员令牌").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("tab", name="数据看板").click()
    expect(card(page, "接待量")).to_contain_text("3")
    expect(card(page, "自助解决率")).to_contain_text("66.7%")
    expect(card(page, "转人工率")).to_contain_text("33.3%")
    expect(card(page, "满意度")).to_contain_text("100.0%")
    expect(card(page, "询单转化率")).to_contain_text("33.3%")
    expect(card(page, "询单转化率")).to_contain_text("¥88.00")
    expect(card(page, "接待量")).to_contain_text("上期为 0")  # nothing the week before
    expect(page.locator("#stats-chart canvas").first).to_be_visible()  # drawn by kefu's own uPlot
    expect(page.locator("#stats-chart")).to_have_attribute("aria-label", re.compile(r"接待 3，转人工 1"))
    expect(page.locator("#stats-reasons")).to_contain_text("顾客要求人工")
    title = kb.entries["shipping.when"].title  # type: ignore[attr-defined]
    expect(page.locator("#stats-top")).to_contain_text(title)
    expect(page.locator("#stats-unhelpful tbody tr")).to_have_count(1)
    expect(page.locator("#stats-unhelpful")).to_contain_text("100%")
    expect(page.locator("#stats-agents tbody tr")).to_have_count(1)
    expect(page.locator("#stats-agents")).to_contain_text("alice")
    shot(page, "admin-stats.png", full_page=True)

    with page.expect_download() as got:
        page.get_by_role("button", name="下载 CSV").click()
    saved = tmp_path / "stats.csv"
    got.value.save_as(saved)
    rows = saved.read_text(encoding="utf-8-sig").splitlines()
    assert "接待量,3" in rows and "转人工会话,1" in rows and "订单金额,88" in rows
    assert any(r.startswith("alice,1,") for r in rows)

    # Thirty days: the same conversations, the chart and the days table longer.
    page.get_by_role("button", name="近30天").click()
    expect(page.locator("#stats-days tbody tr")).to_have_count(30)
    expect(card(page, "接待量")).to_contain_text("3")
    watch.assert_clean()
    ctx.close()

    # A phone, with the keyboard alone: sign in, End to the last tab, read the figures.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")  # type: ignore
    page = phone.new_page()
    watch = Watch(page)
    page.goto(server.url + "/admin")
    expect(page.get_by_label("管理员令牌")).to_be_focused()
    page.keyboard.type(ADMIN_TOKEN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("tab", name="未识别问题")).to_be_visible()
    selected = page.get_by_role("tab", name="未识别问题")
    for _ in range(10):  # Tab to the tab list's selected tab
        if selected.evaluate("t => document.activeElement === t"):
            break
        page.keyboard.press("Tab")
    expect(selected).to_be_focused()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="数据看板")).to_be_focused()
    expect(card(page, "接待量")).to_contain_text("3")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # nothing off-screen
    watch.assert_clean()
    phone.close()
