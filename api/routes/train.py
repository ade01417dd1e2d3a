"""Training runs from the manager's console: start one, follow it. Publishing and rollback are the
admin routes `POST /v1/admin/model/reload {"version"}` and `/model/rollback` (api/routes/admin.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam

from api.routes.admin import ManagerDep
from api.schemas import ErrorOut
from bot.config import Settings
from bot.manage.jobs import TrainingJobs

ROOT = Path(__file__).resolve().parents[2]
router = APIRouter(prefix="/v1/admin/train", tags=["admin"], responses={
    401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}})
JobId = Annotated[str, PathParam(pattern=r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$", description="a run's id")]


def training_jobs(settings: Settings) -> TrainingJobs:
    """The runs of this shop's models folder; the child trains with this server's data and models."""
    env = {"KEFU_DATA_DIR": str(settings.data_dir), "KEFU_MODELS_DIR": str(settings.models_dir),
           "KEFU_EMBEDDER": settings.embedder, "KEFU_TARGET_RISK": str(settings.target_risk),
           "KEFU_HELDOUT_FILE": str(settings.heldout_file or ""),
           "KEFU_DIALOGUES_DIR": str(settings.dialogues_dir or "")}
    return TrainingJobs(settings.models_dir, [sys.executable, "-m", "training", "train-job"], cwd=ROOT, env=env)


def _jobs(request: Request) -> TrainingJobs:
    return request.app.state.training  # type: ignore[no-any-return]


@router.post("", status_code=202)
def start(request: Request, who: ManagerDep) -> Any:
    """Train a new model from the knowledge base as it is now, in the background (409 while a run is
    going): `{"job", "status": "running", ...}`; follow it with GET /v1/admin/train/{job}."""
    return _jobs(request).start(who)


@router.get("")
def latest(request: Request, who: ManagerDep) -> Any:
    """The newest run (`{"job": null}` before the first) and whether one is going."""
    jobs = _jobs(request)
    return {**(jobs.latest() or {"job": None}), "running": jobs.running()}


@router.get("/{job}")
def get(job: JobId, request: Request, who: ManagerDep) -> Any:
    """A run: `{"status": "running"|"done"|"failed", "progress": 0..1, "stage", "version"?, "report"?,
    "gate"?, "error"?}`."""
    return _jobs(request).get(job)
