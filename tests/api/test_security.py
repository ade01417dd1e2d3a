"""Protections of an endpoint open to the internet, against one real server process.

Rate limits, the body limit, CORS, security headers, tokens kept out of the log, and personal
data masked in exports while agents still see it. Each rate-limit test talks to the server from
its own loopback address (127.0.0.x), so that the per-IP counters of one test cannot reach another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.server import ROOT, Server

pytestmark = pytest.mark.slow

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
ADMIN_TOKEN = "admin-token-security-0123456789"
WRONG_TOKEN = "wrong-token-never-valid-42424242"
SHOP = "https://shop.example"
IP_LIMIT, SESSION_LIMIT, WINDOW = 6, 3, 3600
MAX_BODY = 2048

# A shopper's message with every kind of personal data the masker knows.
PHONE, ID_CARD, ORDER = "13812345678", "110101199003071234", "2024031512345678"
ADDRESS = "北京市朝阳区建国路88号3单元502室"
PII_MESSAGE = f"我的手机号是{PHONE}，身份证{ID_CARD}，订单号{ORDER}，地址{ADDRESS}，快递一直没到，转人工"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security") / "kefu.db"


@pytest.fixture(scope="module")
def server(models_dir: Path, db_path: Path) -> Iterator[Server]:
    """One server for the module, logging at info (request lines included), as `kefu serve` does."""
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": f"sqlite:///{db_path}",
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN}", "KEFU_ADMIN_TOKEN": ADMIN_TOKEN,
           "KEFU_RATE_LIMIT_IP": str(IP_LIMIT), "KEFU_RATE_LIMIT_SESSION": str(SESSION_LIMIT),
           "KEFU_RATE_LIMIT_WINDOW": str(WINDOW), "KEFU_MAX_BODY_BYTES": str(MAX_BODY),
           "KEFU_ALLOWED_ORIGINS": f"{SHOP},https://other-shop.example"}
    srv = Server(env, log=db_path.parent / "server.log", log_level="info").start()
    yield srv
    srv.stop()


def client_from(address: str) -> httpx.Client:
    """A client whose requests come from `address` (any 127.x.y.z is loopback on Linux)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def early_in_window() -> None:
    """Fixed windows: start a rate-limit test well inside one window, not across two."""
    if time.time() % WINDOW > WINDOW - 30:
        time.sleep(WINDOW + 1 - time.time() % WINDOW)


def assert_json_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code and body["message"]


# --- rate limits ---------------------------------------------------------------------------------

def test_per_ip_limit_answers_429_with_retry_after(server: Server) -> None:
    early_in_window()
    with client_from("127.0.0.2") as c:
        # New sessions every time: only the IP's counter fills up.
        codes = [c.post(server.url + "/v1/chat", json={"message": "在吗"}).status_code for _ in range(IP_LIMIT)]
        assert codes == [200] * IP_LIMIT
        r = c.post(server.url + "/v1/chat", json={"message": "在吗"})
        assert_json_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= WINDOW
        # The other chat endpoints share the IP's budget.
        r = c.get(server.url + "/v1/chat/whatever/messages")
        assert_json_error(r, 429, "rate_limited")
        # Non-chat endpoints are not limited.
        assert c.get(server.url + "/healthz").status_code == 200
    # Another address still chats.
    with client_from("127.0.0.3") as c:
        assert c.post(server.url + "/v1/chat", json={"message": "在吗"}).status_code == 200


def test_per_session_limit_answers_429_with_retry_after(server: Server) -> None:
    early_in_window()
    with client_from("127.0.0.4") as c:
        first = c.post(server.url + "/v1/chat", json={"message": "在吗"})
        assert first.status_code == 200
        sid = first.json()["session_id"]
        codes = [c.post(server.url + "/v1/chat", json={"session_id": sid, "message": "包邮吗"}).status_code
                 for _ in range(SESSION_LIMIT)]
        assert codes == [200] * SESSION_LIMIT
        r = c.post(server.url + "/v1/chat", json={"session_id": sid, "message": "包邮吗"})
        assert_json_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= WINDOW
        # Below the IP's limit (1 + 3 + 1 = 5 of 6): a new session from the same address is served.
        assert c.post(server.url + "/v1/chat", json={"message": "在吗"}).status_code == 200


# --- body size -----------------------------------------------------------------------------------

def test_body_over_the_limit_is_413_json_and_the_server_keeps_answering(server: Server) -> None:
    big = b'{"message": "' + b"a" * (MAX_BODY + 100) + b'"}'
    with client_from("127.0.0.5") as c:
        # Announced by Content-Length.
        r = c.post(server.url + "/v1/chat", content=big, headers={"content-type": "application/json"})
        assert_json_error(r, 413, "too_large")
        assert r.headers["x-content-type-options"] == "nosniff"
        # Chunked, without Content-Length: counted as it arrives.
        r = c.post(server.url + "/v1/chat", content=iter([big[:1000], big[1000:]]),
                   headers={"content-type": "application/json"})
        assert "content-length" not in r.request.headers
        assert_json_error(r, 413, "too_large")
        # On an agent endpoint too.
        r = c.post(server.url + "/v1/handoffs/1/messages", content=big, headers={**ALICE,
                   "content-type": "application/json"})
        assert_json_error(r, 413, "too_large")
        assert c.get(server.url + "/healthz").json()["status"] == "ok"
        r = c.post(server.url + "/v1/chat", json={"message": "什么时候发货"})
        assert r.status_code == 200 and r.json()["route"] == "faq"


# --- CORS ----------------------------------------------------------------------------------------

def test_cors_allows_only_the_configured_origins(server: Server) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    r = httpx.options(server.url + "/v1/chat", headers={"Origin": SHOP, **preflight})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "POST" in r.headers["access-control-allow-methods"]
    r = httpx.options(server.url + "/v1/chat", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code >= 400

    r = httpx.get(server.url + "/healthz", headers={"Origin": SHOP})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
    r = httpx.get(server.url + "/healthz", headers={"Origin": "https://other-shop.example"})
    assert r.headers["access-control-allow-origin"] == "https://other-shop.example"
    for origin in ("https://evil.example", "http://shop.example", "https://shop.example.evil.example"):
        r = httpx.get(server.url + "/healthz", headers={"Origin": origin})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers, origin


# --- security headers ----------------------------------------------------------------------------

def assert_security_headers(r: httpx.Response) -> None:
    csp = r.headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp, (r.request.url, csp)
    assert r.headers.get("x-content-type-options") == "nosniff", r.request.url
    assert r.headers.get("x-frame-options") == "SAMEORIGIN", r.request.url
    assert r.headers.get("referrer-policy") == "strict-origin-when-cross-origin", r.request.url
    assert r.headers.get_list("content-security-policy") == [csp]  # set once, not twice


def test_security_headers_on_pages_and_api(server: Server) -> None:
    for path in ("/", "/agent"):
        r = httpx.get(server.url + path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert_security_headers(r)
    with client_from("127.0.0.6") as c:
        responses = [
            c.get(server.url + "/healthz"),
            c.post(server.url + "/v1/chat", json={"message": "包邮吗"}),
            c.post(server.url + "/v1/chat", json={"message": ""}),  # 422
            c.get(server.url + "/v1/handoffs"),  # 401
            c.get(server.url + "/no/such/page"),  # 404
        ]
    assert [r.status_code for r in responses] == [200, 200, 422, 401, 404]
    for r in responses:
        assert_security_headers(r)


# --- tokens never logged -------------------------------------------------------------------------

def read_event_stream_ready(url: str, headers: dict[str, str] | None = None) -> str:
    """Open an event stream, read up to its first event's name, close it."""
    with httpx.Client(timeout=httpx.Timeout(10, read=30)) as c, c.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event:"):
                return line[6:].strip()
    raise AssertionError("stream ended without an event")


def test_tokens_never_appear_in_the_log(server: Server) -> None:
    log = server.log
    assert log is not None
    assert httpx.get(server.url + "/v1/handoffs", headers=ALICE).status_code == 200
    assert httpx.get(server.url + "/v1/catalogue", headers=ALICE).status_code == 200
    assert httpx.get(server.url + "/v1/handoffs", headers={"Authorization": f"Bearer {WRONG_TOKEN}"}).status_code == 403
    tickets = [httpx.post(server.url + "/v1/agent/ticket",
                          headers={"Authorization": f"Bearer {token}"}).json()["ticket"]
               for token in (AGENT_TOKEN, OTHER_TOKEN)]
    assert read_event_stream_ready(server.url + f"/v1/agent/events?ticket={tickets[0]}") == "ready"
    assert read_event_stream_ready(server.url + f"/v1/agent/events?x=1&ticket={tickets[1]}&y=2") == "ready"
    assert read_event_stream_ready(server.url + "/v1/agent/events", ALICE) == "ready"
    for query in (f"token={WRONG_TOKEN}", f"token={AGENT_TOKEN}", f"%74oken={AGENT_TOKEN}"):
        assert httpx.get(server.url + f"/v1/agent/events?{query}").status_code == 401
    admin = httpx.get(server.url + "/v1/admin/model", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert admin.status_code == 200
    # Uvicorn writes its access line when a response ends; a last request makes sure ours are out.
    assert httpx.get(server.url + "/livez").status_code == 200
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if "/v1/agent/events" in text and "/livez" in text:
            break
        time.sleep(0.2)
    # The log does have request lines (else this test would prove nothing).
    assert "GET /v1/handoffs" in text and "/v1/agent/events" in text, text[-2000:]
    for token in (AGENT_TOKEN, OTHER_TOKEN, WRONG_TOKEN, ADMIN_TOKEN, *tickets):
        assert token not in text, f"token {token!r} in the server log"


# --- personal data --------------------------------------------------------------------------------

def test_personal_data_masked_in_log_and_export_but_not_for_agents(server: Server, db_path: Path) -> None:
    with client_from("127.0.0.7") as c:
        first = c.post(server.url + "/v1/chat", json={"message": PII_MESSAGE})
        assert first.status_code == 200, first.text
        reply = first.json()
        assert reply["route"] == "human" and reply["handoff"], reply
        hid, sid = reply["handoff"]["id"], reply["session_id"]
        follow = c.post(server.url + "/v1/chat", json={"session_id": sid, "message": f"再说一遍，电话{PHONE}"})
        assert follow.status_code == 200

    # The agent sees the real text (the queue shows what the shopper said last).
    detail = httpx.get(server.url + f"/v1/handoffs/{hid}", headers=ALICE).json()
    assert detail["last_message"] == f"再说一遍，电话{PHONE}"
    texts = [m["text"] for m in detail["transcript"]]
    assert PII_MESSAGE in texts and f"再说一遍，电话{PHONE}" in texts
    assert httpx.post(server.url + f"/v1/handoffs/{hid}/claim", headers=ALICE).status_code == 200
    r = httpx.post(server.url + f"/v1/handoffs/{hid}/resolve", headers=ALICE,
                   json={"label": "shipping.track", "note": "查单"})
    assert r.status_code == 200 and r.json()["label"] == "shipping.track"

    # The export masks it.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")},
           "KEFU_DATABASE_URL": f"sqlite:///{db_path}"}
    out = subprocess.run([sys.executable, "-m", "training", "export-labels"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if '"shipping.track"' in line]
    assert len(rows) == 1, out.stdout
    for placeholder in ("[手机号]", "[身份证]", "[单号]", "[地址]"):
        assert placeholder in rows[0], rows[0]
    assert "快递一直没到" in rows[0]  # the rest of the text is kept

    log = server.log
    assert log is not None
    logged = log.read_text(encoding="utf-8", errors="replace")
    for raw in (PHONE, ID_CARD, ORDER, "建国路88号"):
        assert raw not in out.stdout, f"{raw} in the export"
        assert raw not in logged, f"{raw} in the server log"
