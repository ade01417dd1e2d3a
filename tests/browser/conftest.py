"""What the browser tests share: Debian's chromium driven by Playwright, a watch on a page's errors,
and the screenshots of the README (KEFU_SCREENSHOTS=1 writes them to docs/), a shopper's message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN
from tests.server import ROOT, Server

CHROMIUM = "/usr/bin/chromium"
ADMIN_TOKEN = "admin-token-browser-0123456789"
SCREENSHOTS = os.environ.get("KEFU_SCREENSHOTS") == "1"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium (`make test` installs it; never `playwright install`)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    playwright_api.expect.set_options(timeout=20_000)
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
        yield b
        b.close()


@pytest.fixture()
def server(models_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """A real server process on the trained model, with one agent (alice) and the manager's token."""
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}",
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN}", "KEFU_ADMIN_TOKEN": ADMIN_TOKEN}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


class Watch:
    """A page's dialogs, uncaught errors and CSP violations: a clean page has none."""

    def __init__(self, page: object) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: self.errors.append(str(e)))  # type: ignore[attr-defined]
        page.on("console", self._console)  # type: ignore[attr-defined]

    def _dialog(self, dialog: object) -> None:
        self.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    def _console(self, msg: object) -> None:
        if msg.type == "error" and "Content Security Policy" in msg.text:  # type: ignore[attr-defined]
            self.errors.append(msg.text)  # type: ignore[attr-defined]

    def assert_clean(self) -> None:
        assert self.dialogs == [] and self.errors == []


def shot(page: object, name: str, full_page: bool = False) -> None:
    """docs/<name> from the page as it is, when KEFU_SCREENSHOTS=1."""
    if SCREENSHOTS:
        (ROOT / "docs").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / name), full_page=full_page)  # type: ignore[attr-defined]


def agent_console(browser: Any, srv: Server, token: str, viewport: dict[str, int] | None = None,
                  init_script: str | None = None) -> tuple[Any, Any, Watch]:
    """An agent's console signed in with `token` and live (its context, page and watch); `init_script`
    runs in the page before its own (a counter of beeps, say)."""
    expect = pytest.importorskip("playwright.sync_api").expect
    ctx = browser.new_context(viewport=viewport or {"width": 1366, "height": 768}, locale="zh-CN")
    page = ctx.new_page()
    if init_script:
        page.add_init_script(init_script)
    watch = Watch(page)
    page.goto(srv.url + "/agent")
    page.get_by_label("客服令牌").fill(token)
    page.get_by_label("客服令牌").press("Enter")
    expect(page.locator("#live")).to_have_text("实时更新中")
    return ctx, page, watch


def chat(srv: Server, message: str, session_id: str | None = None) -> dict[str, Any]:
    """A shopper's message over /v1/chat (a new chat without `session_id`): the reply."""
    r = httpx.post(srv.url + "/v1/chat", json={"session_id": session_id, "message": message}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]
