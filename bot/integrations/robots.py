"""A new handoff told to the agents' chat apps: 企业微信 group robots, 钉钉 and 飞书 custom bots.

Each gets the handoff's reason, the shopper's last message (masked: notice.shopper_text) and a link to
it in the agent console, through the background deliveries (bot/service/webhook.py): retried, never
blocking the chat. The shapes, from the platforms' public docs:

- 企业微信 群机器人 (developer.work.weixin.qq.com/document/path/91770, 群机器人配置说明): POST the robot's
  URL (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY) with
  {"msgtype": "markdown", "markdown": {"content": ...}}, at most 4096 bytes; it answers
  {"errcode": 0, "errmsg": "ok"}. The key in the URL is the credential: no signature.
- 钉钉 自定义机器人 (open.dingtalk.com/document/robots/custom-robot-access, 自定义机器人安全设置, 加签):
  POST https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=MS&sign=S with
  {"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}; MS is the time in milliseconds,
  S = urlEncode(base64(HmacSHA256(key=secret, message=MS + "\\n" + secret))); it answers {"errcode": 0}.
- 飞书 自定义机器人 (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot, 签名校验): POST the hook URL
  (https://open.feishu.cn/open-apis/bot/v2/hook/ID) with {"timestamp": "S", "sign": ..., "msg_type": "text",
  "content": {"text": ...}}; S is the time in seconds, sign = base64(HmacSHA256(key=S + "\\n" + secret,
  message="")); it answers {"code": 0}.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from bot.integrations import notice
from bot.service.webhook import Deliveries, Outgoing, handoff_link, http_verdict

if TYPE_CHECKING:  # imported where it is used (bot.service.webhook says why)
    import httpx

log = logging.getLogger(__name__)
KINDS = ("wecom", "dingtalk", "feishu")
# Each platform's "too many messages" (企业微信 45009, 钉钉 130101, 飞书 11232): worth another try.
BUSY_CODES = {45009, 130101, 11232}
MAX_MARKDOWN_BYTES = 4096  # 企业微信's limit; the others take more


@dataclass(frozen=True)
class Robot:
    """One robot: its kind, its webhook URL and (钉钉, 飞书) its signing secret, if it has one."""

    kind: str
    url: str
    secret: str = ""


def dingtalk_sign(timestamp: str, secret: str) -> str:
    """base64(HmacSHA256(secret, "timestamp\\nsecret")); the URL's encoding does the urlEncode."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(timestamp: str, secret: str) -> str:
    """base64(HmacSHA256 keyed by "timestamp\\nsecret" over an empty message)."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def markdown(title: str, lines: list[str], link: str | None) -> str:
    body = "\n".join([f"### {title}", *(f"> {line}" for line in lines)])
    if link:
        body += f"\n\n[{notice.words()['link']}]({link})"
    while len(body.encode()) > MAX_MARKDOWN_BYTES:  # the shopper's text is already short; a long link is not
        body = body[:-100]
    return body


def build(robot: Robot, title: str, lines: list[str], link: str | None,
          clock: Callable[[], float] = time.time) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of one robot's message, signed at the time of sending."""
    url, now = robot.url, clock()
    if robot.kind == "wecom":
        payload: dict[str, Any] = {"msgtype": "markdown", "markdown": {"content": markdown(title, lines, link)}}
    elif robot.kind == "dingtalk":
        payload = {"msgtype": "markdown", "markdown": {"title": title, "text": markdown(title, lines, link)}}
        if robot.secret:
            import httpx

            ts = str(int(now * 1000))
            url = str(httpx.URL(url).copy_merge_params({"timestamp": ts, "sign": dingtalk_sign(ts, robot.secret)}))
    else:
        payload = {"msg_type": "text", "content": {"text": "\n".join([title, *lines, *([link] if link else [])])}}
        if robot.secret:
            ts = str(int(now))
            payload = {"timestamp": ts, "sign": feishu_sign(ts, robot.secret), **payload}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return url, body, {"content-type": "application/json; charset=utf-8"}


def verdict(r: httpx.Response) -> bool | None:
    """The HTTP status, then the body's code: these robots say no in a 200 (a bad signature, a keyword)."""
    first = http_verdict(r)
    if first is not True:
        return first
    try:
        data = r.json()
    except ValueError:
        return True
    code = data.get("errcode", data.get("code", data.get("StatusCode", 0))) if isinstance(data, dict) else 0
    if code == 0:
        return True
    if code in BUSY_CODES:
        return None
    log.warning("robot refused the message: code %s, %s", code, str(data.get("errmsg") or data.get("msg"))[:200])
    return False


class RobotNotifier:
    """Posts every new handoff to each robot."""

    def __init__(self, robots: list[Robot], deliveries: Deliveries, *, agent_url: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.robots, self.deliveries, self.agent_url, self.clock = robots, deliveries, agent_url, clock

    def notify(self, event: dict[str, Any]) -> None:
        if event.get("type") != "handoff.created" or not isinstance(event.get("handoff"), dict):
            return
        h = event["handoff"]
        title, lines = notice.handoff_lines(h)
        link = handoff_link(self.agent_url, h["id"])
        for robot in self.robots:
            self.deliveries.send(Outgoing(f"{robot.kind} robot", partial(build, robot, title, lines, link, self.clock),
                                          verdict))
