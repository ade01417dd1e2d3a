"""Assemble a Bot from a data folder and a models folder."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from bot.dialogue import knowledge
from bot.dialogue.engine import Bot
from bot.dialogue.thresholds import thresholds_for
from bot.language import artefacts, embedders, segment

WARM_UP_SAMPLE = "在吗"  # the commonest first message in a shop's chat


def load_bot(data_dir: Path, models_dir: Path, *, embedder: str | None = None,
             overrides: Mapping[str, float | None] | None = None, version: str | None = None) -> Bot:
    """Load the knowledge base and the current (or named) model, checked against the data folder (its
    user dictionary must be the one the model was trained with); thresholds as training chose them,
    with the operator's overrides.

    The embedder's weights load in a second thread while jieba reads its dictionary (much of it
    is decompression and array copies, which release the GIL): a shorter start-up.
    """
    folder = artefacts.version_dir(Path(models_dir), version)
    embedders.set_disk_cache(Path(models_dir) / artefacts.CACHE_DIR)
    model = artefacts.load_model(folder, embedder=embedder, data_userdict=Path(data_dir) / segment.USERDICT_FILE)
    failure: list[BaseException] = []

    def warm_embedder() -> None:
        try:
            model.scorer.warm()
        except BaseException as exc:  # raised again below, in the caller's thread
            failure.append(exc)

    warming = threading.Thread(target=warm_embedder, name="kefu-warm-embedder", daemon=True)
    warming.start()
    try:
        segment.configure(artefacts.userdict_path(folder))
        kb = knowledge.load(Path(data_dir))
        segment.warm()
    finally:
        warming.join()
    if failure:
        raise failure[0]
    bot = Bot(kb, model, thresholds_for(model.metadata.get("thresholds"), overrides))
    bot.rank(WARM_UP_SAMPLE)  # the whole path once before the first shopper
    return bot
