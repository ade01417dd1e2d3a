"""Shared helpers: statistics, model training into temporary folders, server processes, PostgreSQL schemas."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from api import server as server_options

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "faq"
MESSAGES = Path(__file__).resolve().parent / "messages.txt"
RESULTS = Path(__file__).resolve().parent / "results"
PG_URL = os.environ.get("KEFU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_messages(path: Path = MESSAGES) -> list[str]:
    """The benchmark's shopper messages, one a line (blank lines and # comments skipped)."""
    lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def summarize_ms(samples_s: Iterable[float]) -> dict[str, float]:
    """Percentiles of latencies given in seconds, reported in milliseconds."""
    xs = sorted(samples_s)
    if not xs:
        return {"n": 0}

    def pct(p: float) -> float:
        # nearest-rank on the sorted samples (no interpolation past the largest sample)
        k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
        return xs[k] * 1000

    return {"n": len(xs), "mean_ms": round(statistics.fmean(xs) * 1000, 4), "p50_ms": round(pct(50), 4),
            "p90_ms": round(pct(90), 4), "p99_ms": round(pct(99), 4), "max_ms": round(xs[-1] * 1000, 4),
            "min_ms": round(xs[0] * 1000, 4)}


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any KEFU_ setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env.update(extra)
    return env


def default_embedder() -> str:
    """The embedder a shop gets without configuring one (bot.config.Settings' default)."""
    from bot.config import Settings

    return str(Settings.model_fields["embedder"].default)


def train_model(data_dir: Path, out_dir: Path, embedder: str, *, folds: int = 5, seed: int = 42) -> dict[str, Any]:
    """Train one model with training.train.train (no report, no held-out gate) into out_dir.

    Returns {"models_dir", "version_dir", "seconds", "embedder"}.
    """
    import training.train as tt

    tt.git_commit = lambda: "bench"  # type: ignore[assignment]  # the benchmark never runs git
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    version_dir = tt.train(Path(data_dir), out_dir, seed=seed, embedder=embedder, folds=folds, progress=False,
                           echo=lambda m: None, report=False, heldout=None)
    return {"models_dir": str(out_dir), "version_dir": str(version_dir), "seconds": round(time.perf_counter() - t0, 3),
            "embedder": embedder}


def dir_size(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def proc_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB, from /proc."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


Procs = dict[int, tuple[int, str, float]]  # pid -> (parent pid, command name, CPU seconds used so far)


def _proc_stat(pid: int | str) -> tuple[int, str, float]:
    """A process's parent, command name and CPU time (user and system, all threads), from /proc."""
    head, _, rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")
    f = rest.split()
    return int(f[1]), head.partition("(")[2], (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """The CPU time a process has used (user and system, all its threads)."""
    return _proc_stat(pid)[2]


def processes() -> Procs:
    """Every process, from /proc (one that ends while they are read is left out)."""
    out: Procs = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out[int(d.name)] = _proc_stat(d.name)
            except (OSError, IndexError, ValueError):
                pass
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from bot.language.model import library_versions

        libs = library_versions()
    except Exception:  # noqa: BLE001 - informative only
        libs = {}
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "libraries": libs}


class Server:
    """One `python -m uvicorn api.main:create_app --factory` process on a free loopback port, with the
    options `kefu serve` uses (api.server)."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None,
                 extra_args: list[str] | None = None, cwd: Path = ROOT) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = clean_env(**env)
        self.log_path = Path(log_path)
        self.extra_args = extra_args or []
        self.cwd = cwd  # the code it runs: this checkout's, or another's (bench.load's A/B)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Server:
        out = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", *server_options.cli_args(),
             "--host", "127.0.0.1", "--port", str(self.port), *self.extra_args],
            cwd=self.cwd, env=self.env, stdout=out, stderr=out)
        out.close()
        return self

    def wait_first_answer(self, timeout: float = 180.0, chat: bool = True) -> float:
        """Poll until the first answered request (POST /v1/chat, or GET /livez); seconds since start."""
        import httpx

        assert self.proc is not None
        deadline = self.started_at + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if chat:
                    r = httpx.post(self.url + "/v1/chat", json={"message": "在吗"}, timeout=10)
                else:
                    r = httpx.get(self.url + "/livez", timeout=10)
                if r.status_code == 200:
                    return time.perf_counter() - self.started_at
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"server not answering after {timeout:.0f}s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory_kb(self) -> dict[str, int]:
        return proc_memory_kb(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- PostgreSQL ----------------------------------------------------------------------------------

def pg_available(url: str = PG_URL) -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def fresh_pg_schema(url: str = PG_URL, prefix: str = "kefu_bench") -> str:
    """A new empty schema; the returned URL points every connection at it."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine.dispose()
    return f"{url}?options=-csearch_path%3D{name}"


def drop_pg_schema(schema_url: str, url: str = PG_URL) -> None:
    import sqlalchemy as sa

    name = schema_url.rsplit("%3D", 1)[1]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def write_bodies(path: Path, messages: list[str], session_ids: list[str] | None = None) -> Path:
    """One JSON request body a line, for wrk's Lua script and the fixed-rate load generator."""
    with open(path, "w", encoding="utf-8") as fh:
        if session_ids:
            for i, sid in enumerate(session_ids):
                fh.write(json.dumps({"session_id": sid, "message": messages[i % len(messages)]},
                                    ensure_ascii=False) + "\n")
        else:
            for m in messages:
                fh.write(json.dumps({"message": m}, ensure_ascii=False) + "\n")
    return Path(path)


PREFIXES = ["", "亲，", "你好，", "请问", "在吗？", "老板，", "客服，", "亲亲，", "哈喽，", "麻烦问下，",
            "您好，请问", "诶，"]
SUFFIXES = ["", "？", "呀", "呢", "啊", "谢谢", "，急", "～", "哈", "亲"]


def distinct_variants(messages: list[str], limit: int | None = None, seed: int = 7) -> list[str]:
    """The messages under common openings and endings (亲，… / …呀), every text distinct after normalisation.

    The HTTP benchmark sends these in order, so within one server's run no text repeats and the
    embedder's vector cache (bot.language.vectors, which the benchmark cannot clear inside the
    server) never answers for free. 209 messages give about 25,000 texts.
    """
    import random

    from bot.language.normalize import normalize

    base = list(messages)
    random.Random(seed).shuffle(base)
    seen: set[str] = set()
    out: list[str] = []
    for i in range(len(PREFIXES) * len(SUFFIXES)):
        pre = PREFIXES[i // len(SUFFIXES)]
        suf = SUFFIXES[i % len(SUFFIXES)]
        for m in base:
            text = f"{pre}{m.rstrip('？?。.!！')}{suf}" if suf else f"{pre}{m}"
            key = normalize(text)
            if key and key not in seen:
                seen.add(key)
                out.append(text)
                if limit and len(out) >= limit:
                    return out
    return out
