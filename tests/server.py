"""Start and stop real kefu server processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api import server as server_options
from bench import common as bench_common

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("KEFU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# One set of helpers with the benchmark suite, pointed at the test database.
free_port = bench_common.free_port


def pg_available() -> bool:
    return bench_common.pg_available(PG_URL)


def fresh_pg_schema() -> str:
    """A new empty schema in the test database; the URL points every connection at it."""
    return bench_common.fresh_pg_schema(PG_URL, prefix="kefu")


def drop_pg_schema(url: str) -> None:
    bench_common.drop_pg_schema(url, PG_URL)


class Server:
    """One `uvicorn api.main:create_app` process on a free port."""

    def __init__(self, env: dict[str, str], port: int | None = None, log: Path | None = None,
                 log_level: str = "warning") -> None:
        self.port = port or free_port()
        self.log_level = log_level  # "info" shows uvicorn's request lines, as `kefu serve` does
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, **env}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> Server:
        cmd = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", *server_options.cli_args(),
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", self.log_level]
        if self.log:
            # The child keeps its own copy of the descriptor; ours closes at once.
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=out)
        else:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as a crash or an OOM kill would be."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
