"""A new handoff told to 企业微信, 钉钉 and 飞书 robots: kefu's real server, fake robots that check
each request against the platforms' documented shapes and signatures (bot/integrations/robots.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bot.config import Settings
from tests.integrations.peers import Peer, Seen, check, peer
from tests.server import Server

WECOM_KEY = "wecom-key-0123"
DING_TOKEN = "ding-token-0123"
DING_SECRET = "SECding0123456789abcdef"
FEISHU_HOOK = "feishu-hook-0123"
FEISHU_SECRET = "feishu-secret-0123"
PUBLIC = "https://kefu.shop.example"
PHONE = "13812345678"
PATHS = ["/cgi-bin/webhook/send"] * 2 + ["/robot/send"] + [f"/open-apis/bot/v2/hook/{FEISHU_HOOK}"] * 2


def json_header(seen: Seen) -> None:
    check(seen.method == "POST", f"method {seen.method}")
    check(seen.headers.get("content-type", "").startswith("application/json"), "content-type is not JSON")


def near_now(value: str, unit: float) -> None:
    check(value.isdigit() and abs(int(value) / unit - time.time()) < 3600, f"timestamp {value!r} not within an hour")


class Robots:
    """The three platforms' robots on one fake server. 企业微信's first message is held until `release`
    and then answered 503, 飞书's first is answered with its rate-limit code: both must be retried."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = {"wecom": 0, "dingtalk": 0, "feishu": 0}
        self._lock = threading.Lock()

    def __call__(self, seen: Seen) -> tuple[int, Any]:
        json_header(seen)
        kind = {"/cgi-bin/webhook/send": "wecom", "/robot/send": "dingtalk",
                f"/open-apis/bot/v2/hook/{FEISHU_HOOK}": "feishu"}.get(seen.path)
        check(kind is not None, f"unknown path {seen.path}")
        body = seen.json()
        getattr(self, str(kind))(seen, body)
        with self._lock:
            self.calls[str(kind)] += 1
            first = self.calls[str(kind)] == 1
        if kind == "wecom" and first:
            self.release.wait(60)
            return 503, {"errcode": -1, "errmsg": "system busy"}
        if kind == "feishu" and first:
            return 200, {"code": 11232, "msg": "frequency limited", "data": {}}
        return 200, ({"code": 0, "msg": "success", "data": {}} if kind == "feishu" else {"errcode": 0, "errmsg": "ok"})

    def wecom(self, seen: Seen, body: dict[str, Any]) -> None:
        check(seen.query == {"key": [WECOM_KEY]}, f"query {seen.query}")
        check(set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown", f"fields {sorted(body)}")
        check(set(body["markdown"]) == {"content"}, f"markdown fields {sorted(body['markdown'])}")
        check(len(body["markdown"]["content"].encode()) <= 4096, "content over 4096 bytes")

    def dingtalk(self, seen: Seen, body: dict[str, Any]) -> None:
        check(set(seen.query) == {"access_token", "timestamp", "sign"}, f"query {sorted(seen.query)}")
        check(seen.query["access_token"] == [DING_TOKEN], "access_token")
        ts, sign = seen.query["timestamp"][0], seen.query["sign"][0]  # parse_qs undoes the urlEncode
        near_now(ts, 1000)
        expected = hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
        check(sign == base64.b64encode(expected).decode(), "钉钉 sign does not match")
        check(set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown", f"fields {sorted(body)}")
        check(set(body["markdown"]) == {"title", "text"}, f"markdown fields {sorted(body['markdown'])}")

    def feishu(self, seen: Seen, body: dict[str, Any]) -> None:
        check(seen.query == {}, f"query {seen.query}")
        check(set(body) == {"timestamp", "sign", "msg_type", "content"}, f"fields {sorted(body)}")
        near_now(body["timestamp"], 1)
        key = f"{body['timestamp']}\n{FEISHU_SECRET}".encode()
        check(body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode(),
              "飞书 sign does not match")
        check(body["msg_type"] == "text" and set(body["content"]) == {"text"}, "not a text message")


def text_of(seen: Seen) -> str:
    body = seen.json()
    return str(body["content"]["text"] if "content" in body else
               body["markdown"].get("text") or body["markdown"].get("content"))


@pytest.fixture()
def robots() -> Iterator[tuple[Robots, Peer]]:
    fake = Robots()
    with peer(fake) as p:
        yield fake, p
        fake.release.set()


@pytest.mark.slow
def test_a_new_handoff_reaches_each_robot_signed_masked_and_linked(
        models_dir: Path, tmp_path: Path, robots: tuple[Robots, Peer]) -> None:
    fake, p = robots
    srv = Server({"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
                  "KEFU_PUBLIC_URL": PUBLIC,
                  "KEFU_WECOM_ROBOT_URL": f"{p.url}/cgi-bin/webhook/send?key={WECOM_KEY}",
                  "KEFU_DINGTALK_ROBOT_URL": f"{p.url}/robot/send?access_token={DING_TOKEN}",
                  "KEFU_DINGTALK_ROBOT_SECRET": DING_SECRET,
                  "KEFU_FEISHU_ROBOT_URL": f"{p.url}/open-apis/bot/v2/hook/{FEISHU_HOOK}",
                  "KEFU_FEISHU_ROBOT_SECRET": FEISHU_SECRET}, log=tmp_path / "server.log").start()
    try:
        # When a shopper's message is handed to a person
        r = httpx.post(f"{srv.url}/v1/chat", json={"message": f"收到的杯子碎了，电话{PHONE}"}, timeout=30)
        # Then the shopper has the answer while 企业微信 still holds kefu's first try (nothing waits for it)
        assert r.status_code == 200 and r.json()["route"] == "human", r.text
        assert fake.calls["wecom"] <= 1 and not fake.release.is_set()
        fake.release.set()
        handoff_id, session_id = r.json()["handoff"]["id"], r.json()["session_id"]
        # ...and every robot gets the message, 企业微信 and 飞书 after a retry
        seen = p.wait_for(lambda got: sorted(s.path for s in got) == sorted(PATHS))
    finally:
        srv.stop()
    link = f"{PUBLIC}/agent#handoff-{handoff_id}"
    for request in seen:
        text = text_of(request)
        assert "商品问题" in text, text  # the reason, as the agent console names it
        assert "收到的杯子碎了，电话［手机号］" in text, text  # the last message, masked and inert as markdown
        assert link in text, text
        assert PHONE not in request.raw.decode() and session_id not in request.raw.decode()
    wecom = [s for s in seen if s.path == "/cgi-bin/webhook/send"]
    assert f"[在客服台打开]({link})" in wecom[-1].json()["markdown"]["content"]
    assert {s.json()["markdown"]["title"] for s in seen if s.path == "/robot/send"} == {f"新的转人工 #{handoff_id}"}


def test_markup_in_the_shoppers_words_stays_text() -> None:
    from bot.integrations.notice import shopper_text

    assert shopper_text("[点我](http://evil.example)\n# 标题 <b>") == "［点我］（http://evil.example） ＃ 标题 ＜b＞"
    assert len(shopper_text("好" * 1000)) == 300


@pytest.mark.parametrize(("values", "says"), [
    ({"dingtalk_robot_url": "oapi.dingtalk.com/robot/send"}, "KEFU_DINGTALK_ROBOT_URL is not an http(s) URL"),
    ({"chatwoot_url": "https://chat.example"}, "KEFU_CHATWOOT_URL needs KEFU_CHATWOOT_BOT_TOKEN"),
    ({"chatwoot_url": "https://chat.example", "chatwoot_bot_token": "t", "chatwoot_webhook_secret": "short"},
     "KEFU_CHATWOOT_WEBHOOK_SECRET of 8+ characters"),
])
def test_an_integration_misconfigured_is_refused_with_what_to_fix(values: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**values)  # type: ignore[arg-type]
    assert says in str(info.value)
