"""Build a Bot from settings for the CLI, training a model first when none exists."""

from __future__ import annotations

from bot.model import current_version_dir
from bot.config import Settings, get_settings
from bot.engine import Bot
from bot.errors import ModelNotFoundError
from bot.loader import load_bot as _load


def ensure_model(s: Settings) -> None:
    """Train the default model when models/ has none (first `make run`)."""
    try:
        current_version_dir(s.models_dir)
    except ModelNotFoundError:
        from training.train import train

        train(s.data_dir, s.models_dir, embedder=s.embedder, target_risk=s.target_risk,
              echo=lambda m: None, progress=False, report=False)


def load_bot(settings: Settings | None = None, *, train_if_missing: bool = False) -> Bot:
    s = settings or get_settings()
    if train_if_missing:
        ensure_model(s)
    return _load(s.data_dir, s.models_dir, embedder=s.embedder, overrides=s.policy.model_dump())
