"""A trained model as the server uses it: rank normalised texts. Never imports scikit-learn.

Training (bot/language/pipeline.py) writes the fitted scikit-learn pipeline and, beside it, the
numbers serving needs (scorer.joblib: TF-IDF vocabularies and idf weights, the embedder's name, the
linear layer). Serving computes the model from those plain dicts and arrays, so the server starts
without importing scikit-learn, which pulls in scipy.stats and pandas and takes seconds. Loading and
checking a model folder is bot.language.artefacts's job.

Texts given to the model are already normalised (bot.language.normalize): the engine normalises a
message once, for its rules and for the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import IncompatibleModelError
from bot.language.embedders import make_embedder
from bot.language.segment import cut

SCORER_FORMAT = 2  # 2: the context reads the message joined to the previous one too


@dataclass(frozen=True)
class IntentPrediction:
    """One catalogue id with its probability."""

    intent: str
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "confidence": round(self.confidence, 4)}


# The two analyzers of build_pipeline's TfidfVectorizers, as scikit-learn defines them
# (VectorizerMixin._word_ngrams with tokenizer=cut, and _char_wb_ngrams; no lowercasing,
# accents or stop words). Copied so that serving need not import scikit-learn; a test holds the
# scores to the fitted pipeline's.
def word_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    words = cut(text)
    low, high = ngram_range
    grams = list(words) if low == 1 else []
    for n in range(max(low, 2), min(high, len(words)) + 1):
        grams.extend(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    return grams


def char_wb_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    low, high = ngram_range
    grams: list[str] = []
    for w in text.split():
        w = f" {w} "
        for n in range(low, high + 1):
            grams.extend(w[i:i + n] for i in range(max(1, len(w) - n + 1)))
            if len(w) <= n:  # a short word counts once
                break
    return grams


ANALYZERS = {"word": word_ngrams, "char_wb": char_wb_ngrams}


class Scorer:
    """The linear model over TF-IDF blocks and an embedding, computed directly.

    For a TF-IDF block it adds the weights of the few columns a message has; an embedding block
    is one small matrix product. The result is softmax(features @ coef + intercept), the
    multinomial logistic regression's probabilities.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != SCORER_FORMAT:
            raise IncompatibleModelError(f"scorer format {data.get('format')!r}, this version reads "
                                         f"{SCORER_FORMAT}; retrain with 'kefu train'")
        self.classes = [str(c) for c in data["classes"]]
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        self.coef = np.ascontiguousarray(data["coef"], dtype=np.float64)  # (features, classes)
        self.intercept = np.asarray(data["intercept"], dtype=np.float64)
        self.blocks: list[dict[str, Any]] = []
        for block in data["blocks"]:
            block = dict(block)
            if block["kind"] == "tfidf":
                block["vocabulary"] = {term: j for j, term in enumerate(block.pop("terms").tolist())}
                block["analyze"] = ANALYZERS[block["analyzer"]]
                block["ngram_range"] = tuple(block["ngram_range"])
                block["width"] = len(block["idf"])
                if len(block["vocabulary"]) != block["width"]:
                    raise IncompatibleModelError("a TF-IDF block's terms and weights differ in number; retrain")
            elif block["kind"] == "embedding":
                block["embedder"] = make_embedder(block["spec"], weight=block["scale"])
            else:
                raise IncompatibleModelError(f"unknown feature block {block['kind']!r}; retrain with 'kefu train'")
            self.blocks.append(block)
        # The conversation's part (training/context.py): a bias on every class's score for each entry
        # the previous turn was about, and the weight of the message read joined to the previous one;
        # none for a first message.
        context = data.get("context") or {"keys": [], "bias": np.zeros((0, len(self.classes)))}
        self.context_keys = {str(k): i for i, k in enumerate(context["keys"])}
        self.context_bias = np.asarray(context["bias"], dtype=np.float64)
        self.context_gate = np.asarray(context.get("gate", np.zeros((2, len(CONTEXT_FEATURES)))), dtype=np.float64)
        if self.context_bias.shape != (len(self.context_keys), len(self.classes)):
            raise IncompatibleModelError("the context bias does not match the classes; retrain with 'kefu train'")
        if self.context_gate.shape != (2, len(CONTEXT_FEATURES)):
            raise IncompatibleModelError("the context gates do not match this version; retrain with 'kefu train'")

    def warm(self) -> None:
        """Load the embedder's weights now rather than on the first message."""
        for block in self.blocks:
            if block["kind"] == "embedding":
                block["embedder"].warm()

    def predict_proba(self, x: list[str], contexts: list[str | None] | None = None,
                      joined: list[str | None] | None = None) -> np.ndarray:
        """Probabilities of every class for normalised texts (the pipeline's steps after normalise),
        each read after a turn about `contexts[i]` (an entry, or None for none) and, in a chat, with
        `joined[i]`: the message joined to the shopper's previous one (None: no previous message)."""
        return self.read(x, contexts, joined)[0]

    def read(self, x: list[str], contexts: list[str | None] | None = None,
             joined: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """predict_proba's probabilities, and those of the texts on their own (no conversation)."""
        joined = list(joined or [None] * len(x))
        # Each distinct text read once: a short follow-up's joined text is also one of `x`.
        distinct = list(dict.fromkeys([*x, *(j for j in joined if j is not None)]))
        raw = dict(zip(distinct, self._raw(distinct), strict=True))
        alone = np.array([raw[t] for t in x]).reshape(len(x), len(self.classes))
        scores = alone.copy()
        for i, context in enumerate(contexts or [None] * len(x)):
            row = self.context_keys.get(str(context)) if context is not None else None
            text = joined[i]
            pj = raw[text] if text is not None else None
            if row is None and pj is None:
                continue
            bias = self.context_bias[row] if row is not None else np.zeros(len(self.classes))
            prev = self.class_index.get(str(context), -1)
            scores[i] = in_context([x[i]], alone[i:i + 1], None if pj is None else pj[None, :], bias[None, :],
                                   np.array([prev]), self.context_gate)[0]
        return scores, alone

    def _raw(self, x: list[str]) -> np.ndarray:
        """The classifier's probabilities of texts on their own (no conversation)."""
        scores = np.tile(self.intercept, (len(x), 1))
        offset = 0
        for block in self.blocks:
            weight = block["weight"]
            if block["kind"] == "tfidf":
                width = block["width"]
                coef = self.coef[offset:offset + width]
                for i, (cols, values) in enumerate(self._tfidf_rows(block, x)):
                    if len(cols):
                        scores[i] += (values * weight if weight is not None else values) @ coef[cols]
            else:
                vectors = block["embedder"].transform(x)
                width = vectors.shape[1]
                share = vectors @ self.coef[offset:offset + width]
                scores += share * weight if weight is not None else share
            offset += width
        if offset != self.coef.shape[0]:
            raise IncompatibleModelError(f"features {offset} != the model's {self.coef.shape[0]}; retrain")
        return softmax(scores)

    @staticmethod
    def _tfidf_rows(block: dict[str, Any], docs: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """TfidfVectorizer.transform of a few short documents, row by row: (columns, values)."""
        vocabulary, idf, analyze = block["vocabulary"], block["idf"], block["analyze"]
        ngram_range = block["ngram_range"]
        rows = []
        for doc in docs:
            counts: dict[int, int] = {}
            for token in analyze(doc, ngram_range):
                j = vocabulary.get(token)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            cols = np.fromiter(counts, dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if block["sublinear_tf"]:
                tf = np.log(tf) + 1.0
            values = tf * idf[cols]
            norm = np.sqrt(np.dot(values, values))
            if norm > 0:
                values /= norm
            rows.append((cols, values))
        return rows


@dataclass
class Model:
    """A loaded model with its metadata; `rank` gives the sorted ranking of a normalised text.
    `pipeline` is the fitted scikit-learn pipeline once a tool has loaded it (artefacts.load_pipeline)."""

    scorer: Scorer
    metadata: dict[str, Any]
    path: Path
    pipeline: Any = None

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])

    @property
    def labels(self) -> list[str]:
        return self.scorer.classes

    def probabilities(self, texts: list[str], contexts: list[str | None] | None = None,
                      joined: list[str | None] | None = None) -> np.ndarray:
        return self.scorer.predict_proba(texts, contexts, joined)

    def rank(self, text: str, top_k: int | None = None, context: str | None = None) -> list[IntentPrediction]:
        return self.rank_many([text], top_k, [context])[0]

    def rank_many(self, texts: list[str], top_k: int | None = None, contexts: list[str | None] | None = None,
                  joined: list[str | None] | None = None) -> list[list[IntentPrediction]]:
        """Rankings of several normalised texts in one call (an embedder encodes them as one batch),
        each after a turn about `contexts[i]` (None: a message on its own) and with `joined[i]`, the
        message joined to the shopper's previous one (None: no previous message)."""
        return self.rank_read(texts, top_k, contexts, joined)[0]

    def rank_read(self, texts: list[str], top_k: int | None = None, contexts: list[str | None] | None = None,
                  joined: list[str | None] | None = None
                  ) -> tuple[list[list[IntentPrediction]], list[list[IntentPrediction]]]:
        """rank_many's rankings, and the rankings of the texts on their own (no conversation)."""
        labels = self.labels
        in_chat, alone = self.scorer.read(texts, contexts, joined)
        return ([ranking_from(labels, row, top_k) for row in in_chat],
                [ranking_from(labels, row, top_k) for row in alone])


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


# How much a message leans on the previous turn, from the message itself: short, opening with 那 or
# 还有, ending with 呢, unsure on its own, and how the two readings see the previous entry. Read after
# a turn about entry A (training/context.py fits W and the two gates):
#     log p(B) = log p_alone(B) + g1 * W[A, B] + g2 * (log p_joined(B) - log p_alone(B))
# with g1 = 2 * sigmoid(gate[0] . features) (1 with a zero gate) scaling the bias, and
# g2 = sigmoid(gate[1] . features) the weight of the message joined to the previous one (0 without it).
CONTEXT_FEATURES = ("bias", "length", "opens_with_na", "ends_with_ne", "confidence_alone",
                    "alone_on_previous", "joined_on_previous")
_OPENS = re.compile(r"^(那|还有|然后|再问)")
_ENDS_NE = re.compile(r"呢[?!.~]*$")


def context_features(norms: list[str], alone: np.ndarray, joined: np.ndarray | None, prev: np.ndarray) -> np.ndarray:
    """The gates' features, row by row (`prev`: the previous entry's class index, -1 for none)."""
    rows = np.arange(len(norms))
    has = prev >= 0
    on_alone = np.where(has, alone[rows, np.maximum(prev, 0)], 0.0)
    on_joined = np.where(has, joined[rows, np.maximum(prev, 0)], 0.0) if joined is not None else np.zeros(len(norms))
    return np.column_stack([np.ones(len(norms)), [min(len(t), 30) / 30 for t in norms],
                            [float(bool(_OPENS.match(t))) for t in norms],
                            [float(bool(_ENDS_NE.search(t))) for t in norms], alone.max(1), on_alone, on_joined])


def gates(gate: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(g1, g2) row by row: the scale of the bias and the weight of the joined reading."""
    return 2.0 / (1.0 + np.exp(-(features @ gate[0]))), 1.0 / (1.0 + np.exp(-(features @ gate[1])))


def log_of(p: np.ndarray) -> np.ndarray:
    return np.asarray(np.log(np.clip(p, 1e-12, None)))


def in_context(norms: list[str], alone: np.ndarray, joined: np.ndarray | None, bias: np.ndarray, prev: np.ndarray,
               gate: np.ndarray) -> np.ndarray:
    """Probabilities of messages read in their conversation (see CONTEXT_FEATURES), row by row:
    `alone` and `joined` the classifier's readings (joined None: no previous message), `bias` the
    rows W[A] of each previous entry (zeros for none)."""
    g1, g2 = gates(gate, context_features(norms, alone, joined, prev))
    la = log_of(alone)
    return softmax(context_logits(la, None if joined is None else log_of(joined) - la, bias, g1, g2))


def context_logits(la: np.ndarray, shift: np.ndarray | None, bias: np.ndarray, g1: np.ndarray,
                   g2: np.ndarray) -> np.ndarray:
    """The scores of CONTEXT_FEATURES' formula before the softmax: `la` the log-probabilities alone,
    `shift` the joined reading's minus them (None: no joined reading), `bias` the rows W[A]."""
    z = np.asarray(la + g1[:, None] * bias)
    return z if shift is None else np.asarray(z + g2[:, None] * shift)


def ranking_from(labels: list[str], probs: np.ndarray, top_k: int | None = None) -> list[IntentPrediction]:
    order = np.argsort(-probs, kind="stable")[: top_k or len(labels)]
    return [IntentPrediction(labels[i], float(probs[i])) for i in order]
