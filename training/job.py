"""A training run started from the manager's console (bot/manage/jobs.py spawns `kefu train-job FILE`).

The quick training (three folds, no embedder comparison), never made current here: the manager
publishes it with a click once they have seen its figures. It trains on a copy of the data folder
taken under the editor's lock, so a save during the run is neither half read nor lost. The run's
state file tells the console how far it got, then the new version, its report, and the gate's
verdict: the held-out figures of the new model beside those of the model in service, and whether it
is not worse. A run that fails
says why and changes nothing (a half-written model folder is not made current, and is removed).
It runs on every core it may: the server that started it may hold its own threads to one
(api/server.py: pin_to_one_core), which a child inherits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import traceback
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.errors import KefuError
from bot.language import artefacts
from bot.manage.files import edit_lock
from bot.manage.jobs import update_state


def run_job(state_file: Path, settings: Settings) -> int:
    """Train, recording progress and the verdict in `state_file`; the exit status."""
    from training.train import NotBetterError, train

    def stage(name: str, done: float) -> None:
        update_state(state_file, stage=name, progress=round(done, 2))

    every_core()
    before = set(_versions(settings.models_dir))
    snapshot = tempfile.TemporaryDirectory(prefix="kefu-train-data-")
    data = Path(snapshot.name) / "faq"
    try:
        with edit_lock(settings.data_dir):  # the data as one save left it, not half of the next one
            shutil.copytree(settings.data_dir, data, ignore=shutil.ignore_patterns(".*"))
        target = train(data, settings.models_dir, embedder=settings.embedder,
                       target_risk=settings.target_risk, progress=False, echo=print, quick=True, publish=False,
                       heldout=settings.heldout_file, dialogues=settings.dialogues_dir, stage=stage)
        passed = True
    except NotBetterError as exc:
        target, passed = exc.target, False
    except Exception as exc:  # noqa: BLE001 (any failure is the run's, and must reach the page)
        for version in set(_versions(settings.models_dir)) - before:  # nothing half-made stays
            shutil.rmtree(settings.models_dir / version, ignore_errors=True)
        if not isinstance(exc, KefuError):
            traceback.print_exc()
        error = (str(exc) or type(exc).__name__).replace(str(data), str(settings.data_dir))  # the shop's path
        update_state(state_file, status="failed", error=error)
        return 1
    finally:
        snapshot.cleanup()
    assert target is not None
    report = target / "report.md"
    update_state(state_file, status="done", progress=1.0, stage="done", version=target.name,
                 gate=gate(target, passed),
                 report=report.read_text(encoding="utf-8") if report.is_file() else None)
    return 0


def every_core() -> None:
    """Let this process run on every core the machine allows it (the kernel keeps to the cgroup's)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))


def gate(target: Path, passed: bool) -> dict[str, Any]:
    """The verdict and its figures: the new model's held-out and conversation figures beside those of
    the model that was current, both measured by the run on the same sets."""
    meta = artefacts.read_metadata(target)
    metrics = meta.get("metrics", {})
    before = metrics.get("previous") or {}
    keep = ("route_accuracy", "human_recall", "macro_f1", "wrong_answer_rate", "faq_handoff_rate", "entry_accuracy")

    def pick(figures: dict[str, Any] | None) -> dict[str, Any] | None:
        return {k: figures.get(k) for k in keep} if figures else None

    return {"passed": passed, "previous": meta.get("previous"), "heldout": pick(metrics.get("heldout")),
            "previous_heldout": pick(before.get("heldout")), "dialogues": metrics.get("dialogues"),
            "previous_dialogues": before.get("dialogues")}


def _versions(models_dir: Path) -> list[str]:
    return [p.name for p in Path(models_dir).iterdir() if p.is_dir() and not p.name.startswith(".")
            and p.name != "jobs"] if Path(models_dir).is_dir() else []
