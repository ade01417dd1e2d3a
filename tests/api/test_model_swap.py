"""Model safety and hot swaps against one real server process on a copy of the models folder.

A corrupt artefact is refused and the old model keeps serving; a valid one swaps in while chat
requests keep flowing; rollback goes back; SIGHUP reloads models/CURRENT. The tests share one
server and reset it to the first model before they start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import Server

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "admin-token-swap-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GOOD, BAD = "v2-good", "v3-corrupt"


def copy_version(models: Path, source: str, name: str, **meta_changes: Any) -> Path:
    """A new version folder: `source`'s artefact under another name (the checksum still holds)."""
    target = models / name
    shutil.copytree(models / source, target)
    meta_path = target / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.update(model_version=name, **meta_changes)
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return target


def set_current(models: Path, version: str) -> None:
    (models / "CURRENT").write_text(version + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models_dir copied, with a valid second version and a corrupt third one."""
    out = tmp_path_factory.mktemp("swap") / "models"
    shutil.copytree(models_dir, out)
    first = (out / "CURRENT").read_text(encoding="utf-8").strip()
    copy_version(out, first, GOOD, previous=first)
    bad = copy_version(out, first, BAD, previous=first)
    artefact = bad / "scorer.joblib"  # what the server loads
    data = bytearray(artefact.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the SHA-256 in metadata.json no longer matches
    artefact.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="module")
def first(models: Path) -> str:
    return (models / "CURRENT").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def server(models: Path) -> Iterator[Server]:
    env = {"KEFU_MODELS_DIR": str(models), "KEFU_DATABASE_URL": f"sqlite:///{models.parent / 'kefu.db'}",
           "KEFU_ADMIN_TOKEN": ADMIN_TOKEN, "KEFU_RATE_LIMIT_IP": "1000000", "KEFU_RATE_LIMIT_SESSION": "1000000"}
    srv = Server(env, log=models.parent / "server.log").start()
    yield srv
    srv.stop()


@pytest.fixture()
def srv(server: Server, models: Path, first: str) -> Server:
    """The module's server, serving the first model (also current on disk)."""
    set_current(models, first)
    r = httpx.post(server.url + "/v1/admin/model/reload", headers=ADMIN, json={"version": first}, timeout=300)
    assert r.status_code == 200 and r.json() == {"version": first}, r.text
    return server


def served(srv: Server) -> str:
    return str(httpx.get(srv.url + "/healthz", timeout=60).json()["model"])


def chat_ok(srv: Server) -> None:
    r = httpx.post(srv.url + "/v1/chat", json={"message": "什么时候发货"}, timeout=60)
    assert r.status_code == 200 and r.json()["intent"] == "shipping.when", r.text


def reload(srv: Server, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(srv.url + "/v1/admin/model/reload", headers=ADMIN, json=body, timeout=300)


def test_admin_routes_need_the_admin_token(srv: Server) -> None:
    routes = [("GET", "/v1/admin/model"), ("POST", "/v1/admin/model/reload"), ("POST", "/v1/admin/model/rollback")]
    for method, path in routes:
        r = httpx.request(method, srv.url + path)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", (path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        for wrong in ("Bearer not-the-admin-token", "Bearer " + ADMIN_TOKEN + "x", "Basic " + ADMIN_TOKEN):
            r = httpx.request(method, srv.url + path, headers={"Authorization": wrong})
            assert r.status_code in (401, 403) and r.json()["error"] in ("unauthorized", "forbidden"), (path, r.text)
    # An agent's token is not an admin token either.
    r = httpx.get(srv.url + "/v1/admin/model", headers={"Authorization": "Bearer not-the-admin-token"})
    assert r.status_code == 403 and r.json() == {"error": "forbidden", "message": "invalid admin token"}
    r = httpx.get(srv.url + "/v1/admin/model", headers=ADMIN)
    assert r.status_code == 200 and r.json()["version"] == served(srv)


def test_corrupt_or_missing_model_is_refused_and_the_old_one_keeps_serving(
        srv: Server, models: Path, first: str) -> None:
    # Named explicitly.
    r = reload(srv, {"version": BAD})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["error"] == "incompatible_model" and "checksum" in body["message"] and BAD in body["message"]
    assert served(srv) == first
    chat_ok(srv)
    # Made current on disk, then reloaded.
    set_current(models, BAD)
    r = reload(srv)
    assert r.status_code == 409 and r.json()["error"] == "incompatible_model", r.text
    assert served(srv) == first
    # Missing folders, and names that are not folders of models/.
    for version in ("no-such-version", "../models", ".hidden"):
        r = reload(srv, {"version": version})
        assert r.status_code == 404 and r.json()["error"] == "no_model", (version, r.text)
    assert reload(srv, {"version": 42}).status_code == 422
    assert served(srv) == first
    chat_ok(srv)


def test_valid_model_swaps_in_while_chat_keeps_answering(srv: Server, models: Path, first: str) -> None:
    codes: list[int] = []
    errors: list[str] = []
    stop = threading.Event()
    progress = threading.Condition()

    def shopper() -> None:
        with httpx.Client(timeout=120) as c:
            while not stop.is_set():
                try:
                    r = c.post(srv.url + "/v1/chat", json={"message": "包邮吗"})
                    codes.append(r.status_code)
                    if r.status_code != 200 or r.json()["intent"] != "shipping.fee":
                        errors.append(r.text)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                with progress:
                    progress.notify_all()

    def wait_for_requests(n: int) -> None:
        with progress:
            assert progress.wait_for(lambda: len(codes) >= n or bool(errors), timeout=120)

    thread = threading.Thread(target=shopper, daemon=True)
    thread.start()
    try:
        wait_for_requests(2)
        r = reload(srv, {"version": GOOD})
        assert r.status_code == 200 and r.json() == {"version": GOOD}, r.text
        swapped_at = len(codes)
        wait_for_requests(swapped_at + 3)
    finally:
        stop.set()
        thread.join(120)
    assert not errors, errors[:3]
    assert codes and set(codes) == {200}
    assert served(srv) == GOOD
    model = httpx.get(srv.url + "/v1/admin/model", headers=ADMIN).json()
    assert model["version"] == GOOD and model["previous"] == first


def test_rollback_returns_to_the_previous_version(srv: Server, models: Path, first: str) -> None:
    # The usual flow: a new model becomes current on disk, a reload serves it, rollback goes back.
    set_current(models, GOOD)
    r = reload(srv)
    assert r.status_code == 200 and r.json() == {"version": GOOD}
    r = httpx.post(srv.url + "/v1/admin/model/rollback", headers=ADMIN, timeout=300)
    assert r.status_code == 200 and r.json() == {"version": first}, r.text
    assert served(srv) == first
    assert (models / "CURRENT").read_text(encoding="utf-8").strip() == first
    chat_ok(srv)
    # The first model has no predecessor: a JSON error, and it keeps serving.
    r = httpx.post(srv.url + "/v1/admin/model/rollback", headers=ADMIN, timeout=300)
    assert 400 <= r.status_code < 500 and r.json()["error"] and "previous" in r.json()["message"], r.text
    assert served(srv) == first
    assert (models / "CURRENT").read_text(encoding="utf-8").strip() == first


def test_rollback_after_a_reload_by_name_goes_back_from_the_model_in_service(
        srv: Server, models: Path, first: str) -> None:
    # A reload by name publishes: the version is served and current on disk (a restart keeps it).
    assert reload(srv, {"version": GOOD}).json() == {"version": GOOD}
    assert (models / "CURRENT").read_text(encoding="utf-8").strip() == GOOD
    r = httpx.post(srv.url + "/v1/admin/model/rollback", headers=ADMIN, timeout=300)
    assert r.status_code == 200 and r.json() == {"version": first}, r.text
    assert served(srv) == first


def test_a_publish_on_one_process_is_followed_by_every_other(models: Path, first: str) -> None:
    """Two servers of one shop (Redis between them): a publish or a rollback through one of them is
    served by both."""
    set_current(models, first)
    env = {"KEFU_MODELS_DIR": str(models), "KEFU_DATABASE_URL": f"sqlite:///{models.parent / 'two.db'}",
           "KEFU_ADMIN_TOKEN": ADMIN_TOKEN, "KEFU_REDIS_URL": "redis://127.0.0.1:6379/0",
           "KEFU_REDIS_PREFIX": f"t{uuid.uuid4().hex}"}
    one, two = Server(env).start(), Server(env).start()
    try:
        assert served(one) == served(two) == first
        assert reload(one, {"version": GOOD}).json() == {"version": GOOD}
        assert wait_for(lambda: served(two) == GOOD, 60), "the other process did not follow the publish"
        r = httpx.post(two.url + "/v1/admin/model/rollback", headers=ADMIN, timeout=300)
        assert r.status_code == 200 and r.json() == {"version": first}, r.text
        assert wait_for(lambda: served(one) == first, 60), "the other process did not follow the rollback"
        chat_ok(one)
        chat_ok(two)
    finally:
        one.stop()
        two.stop()


def wait_for(check: Any, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_sighup_reloads_current_and_refuses_a_corrupt_one(srv: Server, models: Path, first: str) -> None:
    assert srv.proc is not None and srv.log is not None
    set_current(models, GOOD)
    os.kill(srv.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: served(srv) == GOOD), "SIGHUP did not swap in models/CURRENT"
    chat_ok(srv)
    # A corrupt CURRENT: the refusal is logged and the server keeps the model it has.
    set_current(models, BAD)
    refusals = srv.log.read_text(encoding="utf-8", errors="replace").count("model reload refused")
    os.kill(srv.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: srv.log.read_text(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
                    .count("model reload refused") > refusals), "no refusal logged"
    assert served(srv) == GOOD
    assert srv.proc.poll() is None
    chat_ok(srv)
