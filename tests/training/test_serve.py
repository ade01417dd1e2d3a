"""`kefu serve`, the README's `make run`: checks the model, then serves it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.language import artefacts
from tests.conftest import DATA
from tests.server import free_port

ROOT = Path(__file__).resolve().parents[2]
KEFU = Path(sys.executable).parent / "kefu"


def _env(models_dir: Path, db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    return {**env, "KEFU_DATA_DIR": str(DATA), "KEFU_MODELS_DIR": str(models_dir),
            "KEFU_DATABASE_URL": f"sqlite:///{db}", **extra}


def _first_answer(proc: subprocess.Popen[bytes], port: int, wait: float) -> httpx.Response:
    """The answer to 什么时候发货 once `kefu serve` listens (it must not exit meanwhile), then stop it."""
    try:
        deadline, reply = time.monotonic() + wait, None
        while reply is None and time.monotonic() < deadline:
            assert proc.poll() is None, f"kefu serve exited with {proc.returncode}"
            try:
                reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat", json={"message": "什么时候发货"}, timeout=5)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert reply is not None and reply.status_code == 200, reply
        return reply
    finally:
        proc.terminate()
        proc.wait(15)


def test_kefu_serve_answers_a_shopper(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([str(KEFU), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=_env(models_dir, tmp_path / "kefu.db"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    reply = _first_answer(proc, port, wait=120)
    assert reply.json()["intent"] == "shipping.when" and reply.json()["route"] == "faq"


def test_kefu_serve_refuses_a_model_of_another_embedder_before_binding(models_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    out = subprocess.run([str(KEFU), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                         env=_env(models_dir, tmp_path / "kefu.db", KEFU_EMBEDDER="none"), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0
    assert "embedder" in out.stderr and "retrain" in out.stderr
    assert "Uvicorn running" not in out.stderr


def test_the_first_kefu_serve_says_while_it_trains_the_default_model(tmp_path: Path) -> None:
    """The first `make run` has no model: it trains the console's quick one before binding the port,
    saying so with its progress, and then answers."""
    port, models, log = free_port(), tmp_path / "models", tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen([str(KEFU), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                                env=_env(models, tmp_path / "kefu.db", KEFU_EMBEDDER="none"),
                                stdout=subprocess.DEVNULL, stderr=err)
    assert _first_answer(proc, port, wait=300).json()["intent"] == "shipping.when", log.read_text()
    lines = [line for line in log.read_text().splitlines() if line.startswith("kefu: ")]
    assert "no model" in lines[0] and "training the default one" in lines[0]
    shares = [int(line.split("training ")[1].split("%")[0]) for line in lines if line.startswith("kefu: training ")
              and "%" in line]
    assert len(shares) >= 4 and shares == sorted(shares)  # its progress, stage by stage
    assert lines[-1].startswith("kefu: model ") and "ready" in lines[-1]
    meta = json.loads((artefacts.version_dir(models) / "metadata.json").read_text())
    assert meta["folds"] == 3 and meta["metrics"]["embedders"] == []  # the quick run
    # ...and within the longest stage, fold by fold: its start, then each of the three folds done
    folds = [int(line.split("training ")[1].split("%")[0]) for line in lines if "(cross-validation," in line]
    assert len(folds) == 1 + meta["folds"] and folds == sorted(set(folds))


def threads_cores(pid: int) -> list[set[int]]:
    """The cores each thread of process `pid` may run on."""
    return [os.sched_getaffinity(int(task)) for task in os.listdir(f"/proc/{pid}/task")]


def test_kefu_serve_holds_its_threads_to_a_core_of_its_own_unless_told_not_to(models_dir: Path,
                                                                              tmp_path: Path) -> None:
    """api/server.py: pin_to_one_core. Two servers side by side (`kefu serve --port 8001 & kefu serve --port
    8002`, as the README shows): every thread of each, the turn threads started later too, on one core, not
    the same one; KEFU_PIN_CORE=false leaves a third on every core the process had."""
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        pytest.skip("one core: nothing to hold a server to")
    servers = []
    for name, env in (("a", {}), ("b", {}), ("free", {"KEFU_PIN_CORE": "false"})):
        port = free_port()
        servers.append((port, subprocess.Popen([str(KEFU), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                               cwd=ROOT, env=_env(models_dir, tmp_path / f"{name}.db", **env),
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    try:
        held = []
        for port, proc in servers:
            deadline = time.monotonic() + 180
            while True:
                assert proc.poll() is None and time.monotonic() < deadline
                try:
                    reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat", json={"message": "运费多少"}, timeout=5)
                    if reply.is_success:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            held.append(threads_cores(proc.pid))
    finally:
        for _, proc in servers:
            proc.terminate()
        for _, proc in servers:
            proc.wait(15)
    a, b, free = held
    assert len(a) > 2 and len(b) > 2  # the event loop's, the turns' and the store's threads
    for threads in (a, b):
        assert len({frozenset(c) for c in threads}) == 1 and len(threads[0]) == 1, threads
        assert threads[0] <= cores
    assert a[0] != b[0]
    assert all(c == cores for c in free), free
