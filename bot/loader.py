"""Assemble a Bot from a data folder and a models folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot import knowledge, segment
from bot.model import current_version_dir, load_model
from bot.engine import Bot, thresholds_from
from bot.errors import ModelNotFoundError


def load_bot(data_dir: Path, models_dir: Path, *, embedder: str | None = None,
             overrides: dict[str, float | None] | None = None, version: str | None = None) -> Bot:
    """Load the knowledge base and the current (or named) model; apply threshold overrides."""
    segment.configure(Path(data_dir) / "userdict.txt")
    kb = knowledge.load(Path(data_dir))
    if version and (Path(version).name != version or version.startswith(".")):
        raise ModelNotFoundError(f"'{version}' is not a model folder name")
    folder = Path(models_dir) / version if version else current_version_dir(Path(models_dir))
    model = load_model(folder, embedder=embedder)
    thresholds = thresholds_from(model)
    set_values = {k: v for k, v in (overrides or {}).items() if v is not None}
    if set_values:
        thresholds = replace(thresholds, **set_values)
    bot = Bot(kb, model, thresholds)
    segment.warm()
    bot.rank("在吗")  # warm the embedder and the pipeline before the first shopper
    return bot
