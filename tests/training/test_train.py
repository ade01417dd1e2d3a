"""Training writes a verified, versioned artefact; the CLI predicts and evaluates with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.errors import IncompatibleModelError, ModelNotFoundError
from bot.language import segment
from bot.language.artefacts import CURRENT_FILE, load_model, load_pipeline, version_dir
from bot.loader import load_bot
from tests.conftest import CATALOGUE, DATA, HELDOUT, ROOT
from training.cli import PREDICT_FIELDS
from training.train import train

KEFU = [sys.executable, "-m", "training"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update(extra)
    return env


def test_artefact_has_metadata_and_metrics(models_dir: Path) -> None:
    version = version_dir(models_dir)
    meta = json.loads((version / "metadata.json").read_text(encoding="utf-8"))
    assert meta["model_version"] == version.name
    assert set(CATALOGUE) <= set(meta["labels"])
    assert meta["embedder"] == "usem3.v1" and len(meta["data_hash"]) == 16
    assert {"scikit-learn", "jieba", "numpy"} <= set(meta["libraries"])
    cv = meta["metrics"]["cv"]
    assert cv["accuracy"] > 0.8 and cv["family_macro_f1"] > 0.85
    assert set(cv["per_entry_f1"]) == set(meta["labels"]) and cv["most_confused"]
    assert 0.35 <= meta["thresholds"]["answer"] <= 0.95 and meta["risk_coverage"]


def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = train(DATA, tmp_path / "a", seed=7, embedder="none", folds=3, progress=False, echo=lambda m: None)
    b = train(DATA, tmp_path / "b", seed=7, embedder="none", folds=3, progress=False, echo=lambda m: None)
    texts = ["什么时候发货", "运费险怎么赔", "衣服破了个洞"]
    pa, pb = load_model(a).probabilities(texts), load_model(b).probabilities(texts)  # texts already normal
    assert np.array_equal(pa, pb)
    ma, mb = (json.loads((d / "metadata.json").read_text())["metrics"] for d in (a, b))
    assert ma == mb


@pytest.mark.slow
def test_a_large_catalogue_trains_on_the_bounded_path(tmp_path: Path) -> None:
    """Twice the catalogue (copies under new ids, bench.growth.scale_data): SAGA on terms seen twice,
    three folds; the saved scorer still computes the saved pipeline's probabilities."""
    from bench.growth import scale_data

    data = tmp_path / "x2"
    sizes = scale_data(DATA, data, 2)
    said: list[str] = []
    target = train(data, tmp_path / "m", seed=7, embedder="none", folds=5, progress=False, echo=said.append,
                   report=False)
    meta = json.loads((target / "metadata.json").read_text(encoding="utf-8"))
    assert meta["solver"] == "saga" and meta["folds"] == 3 and len(meta["labels"]) == sizes["entries"]
    assert "a large catalogue, SAGA and 3 folds" in said[0]
    model = load_model(target)
    pipeline = load_pipeline(model)
    assert pipeline.named_steps["features"].transformer_list[1][1].min_df == 2
    texts = ["什么时候发货", "这个连衣裙什么时候发货呀", "运费险怎么赔"]
    np.testing.assert_allclose(model.probabilities(texts), pipeline.predict_proba(texts), rtol=0, atol=1e-12)
    assert model.rank("这个连衣裙什么时候发货呀")[0].intent == "shipping.when_x1"
    assert model.rank("什么时候发货")[0].intent == "shipping.when"
    assert meta["metrics"]["cv"]["accuracy"] > 0.6


def test_tampered_artefacts_are_refused(models_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(version_dir(models_dir), copy)
    with open(copy / "pipeline.joblib", "ab") as fh:
        fh.write(b"\0")
    model = load_model(copy)  # the server loads only scorer.joblib...
    assert model.rank("什么时候发货")[0].intent == "shipping.when"
    with pytest.raises(IncompatibleModelError, match="checksum"):
        load_pipeline(model)  # ...tools that need the pipeline get the same refusal
    with open(copy / "scorer.joblib", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IncompatibleModelError, match="checksum"):
        load_model(copy)


def test_model_refuses_another_embedder(models_dir: Path) -> None:
    with pytest.raises(IncompatibleModelError, match="embedder"):
        load_model(version_dir(models_dir), embedder="none")


def test_missing_model_says_to_train(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="kefu train"):
        version_dir(tmp_path)


def test_cli_predict_writes_one_line_per_input_in_order(models_dir: Path) -> None:
    lines = ["什么时候发货", "我要投诉你们", "收到的碗碎了", "转人工", "not json", "谢谢"]
    stdin = "\n".join(json.dumps({"text": t}, ensure_ascii=False) if t != "not json" else t for t in lines)
    out = subprocess.run(KEFU + ["predict"], input=stdin, capture_output=True, text=True, cwd=ROOT,
                         env=_env(KEFU_MODELS_DIR=str(models_dir)), timeout=300, check=True)
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(rows) == len(lines)
    assert rows[0]["route"] == "faq" and rows[0]["intent"] == "shipping.when" and "亲" in rows[0]["reply"]
    assert (rows[1]["route"], rows[1]["intent"], rows[1]["reason"]) == ("human", "human.complaint", "complaint")
    assert (rows[2]["intent"], rows[2]["reason"], rows[2]["action"]) == ("human.problem", "problem", "handoff")
    assert (rows[3]["intent"], rows[3]["reason"]) == ("human.request", "requested")
    assert "error" in rows[4]
    assert rows[5]["intent"] == "smalltalk.thanks"
    assert set(rows[0]) == {"text", *PREDICT_FIELDS}  # the reply's own names, as the API has them
    assert rows[0]["ranking"][0] == {"intent": "shipping.when", "confidence": rows[0]["confidence"]}


def test_cli_predict_trains_a_model_when_there_is_none(tmp_path: Path) -> None:
    out = subprocess.run(KEFU + ["predict"], input='{"text": "可以货到付款吗"}\n', capture_output=True, text=True,
                         cwd=ROOT, env=_env(KEFU_MODELS_DIR=str(tmp_path), KEFU_EMBEDDER="none"),
                         timeout=600, check=True)
    assert json.loads(out.stdout)["intent"] == "payment.cod"
    assert (tmp_path / CURRENT_FILE).is_file()


def test_cli_eval_prints_metrics_as_json(models_dir: Path) -> None:
    out = subprocess.run(KEFU + ["eval", str(HELDOUT), "--json"], capture_output=True, text=True, cwd=ROOT,
                         env=_env(KEFU_MODELS_DIR=str(models_dir)), timeout=300, check=True)
    m = json.loads(out.stdout)
    for key in ("route_accuracy", "macro_f1", "human_recall", "faq_handoff_rate", "entry_accuracy"):
        assert 0.0 <= m[key] <= 1.0


def test_cli_eval_of_a_missing_file_fails_with_one_line(models_dir: Path, tmp_path: Path) -> None:
    out = subprocess.run(KEFU + ["eval", str(tmp_path / "nope.jsonl")], capture_output=True, text=True, cwd=ROOT,
                         env=_env(KEFU_MODELS_DIR=str(models_dir)), timeout=300)
    assert out.returncode == 1 and out.stderr.startswith("error:")


WORD = "璃纹绒"  # a fabric only this shop sells: jieba alone cuts it into pieces


def test_the_user_dictionary_travels_with_the_model(tmp_path: Path) -> None:
    """`kefu train --data DIR` segments with DIR's dictionary and the model carries it; a server on DIR
    segments the same way; a server whose data folder has another dictionary is refused."""
    data, models = tmp_path / "data", tmp_path / "models"
    shutil.copytree(DATA, data)
    (data / "userdict.txt").write_text((DATA / "userdict.txt").read_text(encoding="utf-8") + f"\n{WORD} 50 n\n",
                                       encoding="utf-8")
    (data / "fabric.yml").write_text(f"- intent: size.fit\n  examples: |\n    - {WORD}的会缩水吗\n    - {WORD}掉毛吗\n",
                                     encoding="utf-8")
    segment.configure(DATA / "userdict.txt")  # whatever this process segmented with before
    subprocess.run(KEFU + ["train", "--data", str(data), "--out", str(models), "--embedder", "none"], cwd=ROOT,
                   env=_env(KEFU_HELDOUT_FILE=""), capture_output=True, text=True, timeout=900, check=True)
    folder = version_dir(models)
    assert (folder / "userdict.txt").read_bytes() == (data / "userdict.txt").read_bytes()
    # The report plays the conversations of data/dialogues, set by set, and shows the context's fit.
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    assert set(meta["metrics"]["dialogues"]) == {p.stem for p in (ROOT / "data" / "dialogues").glob("*.jsonl")}
    assert 0 < meta["metrics"]["dialogues"]["test"]["entry_accuracy"] <= 1 and meta["context"]["turns"] > 5000
    report = (folder / "report.md").read_text(encoding="utf-8")
    assert "## Conversations" in report and "test: this model" in report and "context bias" in report
    words = load_model(folder).scorer.blocks[0]["vocabulary"]
    assert WORD in words and "璃纹" not in words and "璃" not in words  # training saw the shop's word whole
    segment.configure(DATA / "userdict.txt")
    bot = load_bot(data, models, embedder="none")
    assert WORD in segment.cut(f"{WORD}的会缩水吗")  # ...and so does serving
    assert bot.reply(f"{WORD}的衣服会缩水吗").intent == "size.fit"

    (data / "userdict.txt").write_text(f"{WORD} 50 n\n", encoding="utf-8")  # the shop edits its dictionary
    with pytest.raises(IncompatibleModelError, match="another user dictionary"):
        load_bot(data, models, embedder="none")
    out = subprocess.run(KEFU + ["serve", "--port", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env=_env(KEFU_DATA_DIR=str(data), KEFU_MODELS_DIR=str(models), KEFU_EMBEDDER="none"))
    assert out.returncode == 1 and "another user dictionary" in out.stderr and "kefu train --data" in out.stderr
