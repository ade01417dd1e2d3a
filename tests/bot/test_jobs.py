"""Training runs as child processes: one at a time across processes, state any process can read."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from bot.errors import ConflictError, NotFoundError
from bot.manage.jobs import TrainingJobs

# A stand-in for `kefu train-job FILE`: waits for a go file, then records a result in its state file.
CHILD = """
import json, os, sys, time
from pathlib import Path
state = Path(sys.argv[-1])
go = state.parent / "go"
while not go.exists():
    time.sleep(0.02)
s = json.loads(state.read_text()); s.update(status="done", progress=1.0, version="v2")
tmp = state.with_suffix(".tmp"); tmp.write_text(json.dumps(s)); os.replace(tmp, state)
"""


def wait_for(check, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_one_run_at_a_time_and_its_state_is_read_by_anyone(tmp_path: Path) -> None:
    jobs = TrainingJobs(tmp_path, [sys.executable, "-c", CHILD])
    first = jobs.start("mei")
    assert (first["status"], first["who"], jobs.running()) == ("running", "mei", True)
    with pytest.raises(ConflictError):
        jobs.start("li")
    # Another process's view of the same models folder sees the same run.
    other = TrainingJobs(tmp_path, [sys.executable, "-c", CHILD])
    assert other.get(first["job"])["status"] == "running" and other.running()
    (tmp_path / "jobs" / "go").touch()
    wait_for(lambda: not jobs.running())
    assert other.get(first["job"])["status"] == "done" and jobs.latest()["version"] == "v2"  # type: ignore[index]
    second = jobs.start("li")  # the lock is free again
    assert second["job"] != first["job"]
    with pytest.raises(NotFoundError):
        jobs.get("../../etc/passwd")


def test_a_run_that_dies_reads_as_failed_and_frees_the_lock(tmp_path: Path) -> None:
    jobs = TrainingJobs(tmp_path, [sys.executable, "-c", CHILD])
    job = jobs.start("mei")
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    child = next(p for p in pids if job["job"] in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace"))
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: not jobs.running())
    state = jobs.get(job["job"])
    assert state["status"] == "failed" and "stopped unexpectedly" in state["error"]
    assert json.loads((tmp_path / "jobs" / f"{job['job']}.json").read_text())["status"] == "running"  # as left
