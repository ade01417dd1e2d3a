"""Assemble a Bot from a data folder and a models folder."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from bot import embedders, knowledge, segment
from bot.engine import Bot, thresholds_from
from bot.errors import ModelNotFoundError
from bot.model import CACHE_DIR, current_version_dir, load_model


def load_bot(data_dir: Path, models_dir: Path, *, embedder: str | None = None,
             overrides: dict[str, float | None] | None = None, version: str | None = None) -> Bot:
    """Load the knowledge base and the current (or named) model; apply threshold overrides.

    The embedder's weights load in a second thread while jieba reads its dictionary (much of it
    is decompression and array copies, which release the GIL): a shorter start-up.
    """
    if version and (Path(version).name != version or version.startswith(".")):
        raise ModelNotFoundError(f"'{version}' is not a model folder name")
    folder = Path(models_dir) / version if version else current_version_dir(Path(models_dir))
    embedders.set_disk_cache(Path(models_dir) / CACHE_DIR)
    model = load_model(folder, embedder=embedder)
    failure: list[BaseException] = []

    def warm_embedder() -> None:
        try:
            model.scorer.warm()
        except BaseException as exc:  # raised again below, in the caller's thread
            failure.append(exc)

    warming = threading.Thread(target=warm_embedder, name="kefu-warm-embedder", daemon=True)
    warming.start()
    try:
        segment.configure(Path(data_dir) / "userdict.txt")
        kb = knowledge.load(Path(data_dir))
        segment.warm()
    finally:
        warming.join()
    if failure:
        raise failure[0]
    thresholds = thresholds_from(model)
    set_values = {k: v for k, v in (overrides or {}).items() if v is not None}
    if set_values:
        thresholds = replace(thresholds, **set_values)
    bot = Bot(kb, model, thresholds)
    bot.rank("在吗")  # the whole path once before the first shopper
    return bot
