"""Build a Bot from settings for the CLI, training a model first when none exists."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from bot.config import Settings, get_settings
from bot.dialogue import knowledge
from bot.dialogue.engine import Bot
from bot.language import artefacts
from bot.language.segment import USERDICT_FILE
from bot.loader import load_bot as _load


def ensure_model(s: Settings, say: Callable[[str], None] | None = None) -> None:
    """Train the default model when models/ has none (the first `make run`), saying what it does
    (`say`: a line; standard error by default). It is the manager console's quick run (three folds,
    no embedder comparison): half the time of `kefu train`, which trains the full one later."""
    if artefacts.current_version(s.models_dir) is not None:
        return
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    say(f"kefu: no model in {s.models_dir} yet: training the default one from {s.data_dir} "
        "(once, about a minute; `kefu train` trains the full one any time)")
    started = time.monotonic()
    from training.train import train  # scikit-learn and the embedder: seconds, after the line above

    def stage(name: str, done: float) -> None:
        say(f"kefu: training {done:.0%} ({name}, {time.monotonic() - started:.0f} s)")

    target = train(s.data_dir, s.models_dir, embedder=s.embedder, target_risk=s.target_risk,
                   echo=lambda m: say(f"kefu: {m}"), progress=False, report=False, quick=True, stage=stage)
    say(f"kefu: model {target.name} ready in {time.monotonic() - started:.0f} s")


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
