"""Training runs started from the manager's console: in a child process, one at a time, seen by all.

The server keeps answering shoppers while a model trains, so a run is a child process (the
training CLI, whose command the caller gives: bot/ never imports training/). At most one runs at a
time across every process of the shop: the run holds an exclusive lock on a file in the models
folder for its whole life (the child inherits the lock the parent took, so no second run can
start between the check and the spawn, and a killed run frees it). Its state is a JSON file in
`models/jobs/`, which the child rewrites atomically as it goes and any server process reads: a
file still `running` whose lock is free belongs to a run that died, and reads as failed.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import secrets
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.errors import ConflictError, NotFoundError
from bot.manage.files import atomic_write

JOBS_DIR = "jobs"
LOCK_FILE = ".train.lock"
_JOB_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace a job's state file atomically (readers see the old state or the new, never half)."""
    atomic_write(path, json.dumps(state, ensure_ascii=False).encode("utf-8"))


def update_state(path: Path, **values: Any) -> dict[str, Any]:
    """The child's side: merge `values` into its state file."""
    state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    state.update(values)
    write_state(path, state)
    return state


class TrainingJobs:
    """Start training runs and read their state. `command` is the argv that trains (the job's state
    file is appended to it), run with `cwd` and `env` added to this process's environment."""

    def __init__(self, models_dir: Path, command: Sequence[str], cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.folder = Path(models_dir) / JOBS_DIR
        self.lock_path = Path(models_dir) / LOCK_FILE
        self.command = list(command)
        self.cwd = cwd
        self.env = dict(env or {})

    def start(self, who: str) -> dict[str, Any]:
        """Spawn a run; ConflictError while another one runs anywhere."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConflictError("a training run is already going; wait for it to finish") from None
            job = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
            path = self.folder / f"{job}.json"
            state = {"job": job, "status": "running", "progress": 0.0, "stage": "starting", "who": who,
                     "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            write_state(path, state)
            log = open(self.folder / f"{job}.log", "wb")  # noqa: SIM115 (the child writes it)
            with log:
                # The lock's descriptor is the child's too: the run holds the lock until it exits.
                child = subprocess.Popen([*self.command, str(path)], cwd=self.cwd, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, pass_fds=(fd,),
                                         start_new_session=True, env={**os.environ, **self.env})
            threading.Thread(target=child.wait, name=f"train-{job}", daemon=True).start()  # reaped when done
            return state
        finally:
            os.close(fd)

    def get(self, job: str) -> dict[str, Any]:
        """A run's state; NotFoundError for an unknown id."""
        if not _JOB_ID.match(job) or not (self.folder / f"{job}.json").is_file():
            raise NotFoundError("no such training run")
        return self._read(self.folder / f"{job}.json")

    def latest(self) -> dict[str, Any] | None:
        """The newest run, or None."""
        files = sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []
        return self._read(files[-1]) if files else None

    def running(self) -> bool:
        """Whether a run holds the lock now."""
        if not self.lock_path.exists():
            return False
        fd = os.open(self.lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def _read(self, path: Path) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if state.get("status") == "running" and not self.running():  # the run died without a word
            state.update(status="failed", error=state.get("error") or "the training run stopped unexpectedly")
        return state
