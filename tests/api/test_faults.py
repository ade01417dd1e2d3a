"""Faults with real processes: the database going away, two servers sharing one shop."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN
from tests.api.test_handoffs import ALICE, EventReader, chat
from tests.server import Server, drop_pg_schema, fresh_pg_schema, pg_available

pytestmark = pytest.mark.postgres


class TcpProxy:
    """A loopback TCP forwarder to PostgreSQL that can be cut and restored, as a network blip would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self.up = False
        with self._lock:
            for s in self._conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self._conns.clear()

    def restore(self) -> None:
        self.up = True


@pytest.fixture()
def pg_url() -> Iterator[str]:
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (.ci/run starts it)")
    url = fresh_pg_schema()
    yield url
    drop_pg_schema(url)


def test_database_outage_is_503_and_recovers_by_itself(models_dir: Path, pg_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxied = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    srv = Server({"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": proxied},
                 log=tmp_path / "server.log").start()
    try:
        assert chat(srv, "什么时候发货")["route"] == "faq"
        proxy.cut()
        r = httpx.post(srv.url + "/v1/chat", json={"message": "包邮吗"}, timeout=60)
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert httpx.get(srv.url + "/healthz", timeout=60).json()["database"] is False
        proxy.restore()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = httpx.post(srv.url + "/v1/chat", json={"message": "包邮吗"}, timeout=60)
            if r.status_code == 200:
                break
            time.sleep(0.5)
        assert r.status_code == 200 and r.json()["intent"] == "shipping.fee"
    finally:
        srv.stop()


def test_two_processes_serve_one_shop(models_dir: Path, pg_url: str, tmp_path: Path) -> None:
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": pg_url,
           "KEFU_REDIS_URL": "redis://127.0.0.1:6379/0", "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN}",
           "KEFU_RATE_LIMIT_IP": "8", "KEFU_RATE_LIMIT_WINDOW": "60", "KEFU_REDIS_PREFIX": f"t{uuid.uuid4().hex}"}
    if time.time() % 60 > 40:  # fixed windows: start the test early in a minute, not across two
        time.sleep(61 - time.time() % 60)
    a = Server(env, log=tmp_path / "a.log").start()
    b = Server(env, log=tmp_path / "b.log").start()
    try:
        # An agent watches server B; a shopper on server A asks for a person.
        agents = EventReader(b.url + "/v1/agent/events", ALICE)
        handoff = chat(a, "转人工")["handoff"]
        assert agents.wait_for("handoff")["handoff"]["id"] == handoff["id"]
        # The agent on B claims and replies; the shopper's history on A has the reply.
        sid = httpx.get(b.url + f"/v1/handoffs/{handoff['id']}", headers=ALICE).json()["session_id"]
        httpx.post(b.url + f"/v1/handoffs/{handoff['id']}/claim", headers=ALICE).raise_for_status()
        httpx.post(b.url + f"/v1/handoffs/{handoff['id']}/messages", headers=ALICE,
                   json={"text": "亲，我来帮您"}).raise_for_status()
        texts = [m["text"] for m in httpx.get(a.url + f"/v1/chat/{sid}/messages").json()["messages"]]
        assert "亲，我来帮您" in texts
        agents.close()
        # One IP's limit holds across both processes (shared counters in Redis).
        codes = [httpx.post(srv.url + "/v1/chat", json={"message": "在吗"}).status_code
                 for srv in (a, b, a, b, a, b, a, b, a, b)]
        assert codes.count(429) >= 3 and codes[:4] == [200, 200, 200, 200]
    finally:
        a.stop()
        b.stop()
