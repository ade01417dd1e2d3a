"""Build a Bot from settings for the CLI, training a model first when none exists."""

from __future__ import annotations

from bot.config import Settings, get_settings
from bot.dialogue import knowledge
from bot.dialogue.engine import Bot
from bot.language import artefacts
from bot.language.segment import USERDICT_FILE
from bot.loader import load_bot as _load


def ensure_model(s: Settings) -> None:
    """Train the default model when models/ has none (first `make run`)."""
    if artefacts.current_version(s.models_dir) is None:
        from training.train import train

        train(s.data_dir, s.models_dir, embedder=s.embedder, target_risk=s.target_risk,
              echo=lambda m: None, progress=False, report=False)


def check_servable(settings: Settings | None = None) -> None:
    """Train a model if there is none, then check what the server will load (the knowledge base, the
    model's checksums, libraries and embedder) without loading jieba or the embedder: the server
    loads them itself, and `kefu serve` should not pay for them twice."""
    s = settings or get_settings()
    ensure_model(s)
    knowledge.load(s.data_dir)
    artefacts.load_model(artefacts.version_dir(s.models_dir), embedder=s.embedder,
                         data_userdict=s.data_dir / USERDICT_FILE)


def load_bot(settings: Settings | None = None, *, train_if_missing: bool = False) -> Bot:
    s = settings or get_settings()
    if train_if_missing:
        ensure_model(s)
    return _load(s.data_dir, s.models_dir, embedder=s.embedder, overrides=s.policy.model_dump())
