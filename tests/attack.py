"""The outside attack of issue 12, replayed against a running kefu.

    python -m tests.attack http://127.0.0.1:8000 --agent alice:TOKEN --agent bob:TOKEN \
        [--admin TOKEN] [--log server.log] [--webhook-port 9999] [--request-timeout 15]

Each case is one attack; it raises Finding when kefu gives way. The server should run with a per-IP
limit of at most 40 requests per window (the forged X-Forwarded-For case counts on it), a per-session
limit of at least 20, and, for the cases that read it, its log in a file (`--log`, written at
uvicorn's info level) and a webhook pointing at `--webhook-port` on 127.0.0.1. Requests come from
several loopback addresses (any 127.x.y.z is the local host on Linux), so that no case spends
another's rate limit. `make test` runs every case on SQLite and PostgreSQL
(tests/api/test_attack.py); an operator can run it against a server of their own.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

PHONE, ADDRESS = "13912345678", "上海市浦东新区世纪大道100号5单元1201室"
PII = f"电话{PHONE} 地址{ADDRESS}"


class Finding(AssertionError):
    """kefu gave way to an attack."""


def check(condition: bool, finding: str) -> None:
    if not condition:
        raise Finding(finding)


@dataclass
class Target:
    url: str
    agents: list[str]  # tokens; the first two are used as two different agents
    admin: str | None = None
    log: str | None = None
    webhook_port: int | None = None
    request_timeout: float = 15.0
    _inbox: list[dict[str, Any]] = field(default_factory=list)
    _next_address: int = 0
    _clients: list[httpx.Client] = field(default_factory=list)

    def address(self) -> str | None:
        """A loopback address no case has used yet (a fresh per-IP budget); None for a server elsewhere."""
        if not (urlsplit(self.url).hostname or "").startswith("127."):
            return None
        self._next_address += 1
        return f"127.0.{100 + self._next_address // 250}.{1 + self._next_address % 250}"

    def client(self, address: str | None = None) -> httpx.Client:
        """A client from a loopback address of its own; closed after the case."""
        address = address or self.address()
        c = httpx.Client(base_url=self.url, timeout=60, transport=httpx.HTTPTransport(local_address=address))
        self._clients.append(c)
        return c

    def close_clients(self) -> None:
        while self._clients:
            self._clients.pop().close()

    def agent(self, n: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agents[n]}"}

    def log_text(self) -> str:
        """The server's log once the lines of the requests so far are in it."""
        assert self.log is not None
        marker = f"/livez?status={secrets.token_hex(4)}"
        httpx.get(self.url + marker)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(self.log, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            if marker in text:
                return text
            time.sleep(0.2)
        raise Finding("the server log has no access lines (run it at uvicorn's info level)")


CASES: dict[str, Callable[[Target], None]] = {}


def case(fn: Callable[[Target], None]) -> Callable[[Target], None]:
    CASES[fn.__name__] = fn
    return fn


def hand_off(c: httpx.Client, text: str = "转人工", session_id: str | None = None) -> dict[str, Any]:
    body = {"message": text} if session_id is None else {"message": text, "session_id": session_id}
    r = c.post("/v1/chat", json=body)
    check(r.status_code == 200, f"chat answered {r.status_code}: {r.text[:200]}")
    reply = r.json()
    check(reply["handoff"] is not None, f"{text!r} was not handed off: {reply}")
    return reply  # type: ignore[no-any-return]


def open_ids(t: Target, status: str | None = None) -> set[int]:
    params = {"status": status} if status else {}
    r = httpx.get(t.url + "/v1/handoffs", params=params, headers=t.agent(), timeout=60)
    check(r.status_code == 200, f"queue answered {r.status_code}")
    return {h["id"] for h in r.json()["data"]}


# -- 0. the queue hides new handoffs once 200 exist ----------------------------------------------
@case
def queue_shows_every_open_handoff(t: Target) -> None:
    """205 waiting handoffs, then 200 of them resolved: a new one is always in the queue."""
    created = []
    for n in range(205):
        if n % 30 == 0:
            c = t.client()
        created.append(hand_off(c, f"转人工 第{n}位")["handoff"]["id"])
    newest = hand_off(t.client(), "我要投诉")["handoff"]["id"]
    check(newest in open_ids(t), "a new handoff is missing from GET /v1/handoffs")
    check(newest in open_ids(t, "waiting"), "a new handoff is missing from ?status=waiting")
    for hid in created[:200]:
        r = httpx.post(f"{t.url}/v1/handoffs/{hid}/resolve", headers=t.agent(), json={"note": "done"}, timeout=60)
        check(r.status_code == 200, f"resolve answered {r.status_code}")
    latest = hand_off(t.client(), "转人工")["handoff"]
    check(latest["id"] in open_ids(t) and latest["id"] in open_ids(t, "waiting"),
          "a handoff made after 200 resolved ones is missing from the queue")
    waiting = httpx.get(t.url + "/v1/handoffs", params={"status": "waiting"}, headers=t.agent()).json()["data"]
    position = {h["id"]: h["position"] for h in waiting}[latest["id"]]
    check(position == latest["position"] == len(waiting), "the shopper's place differs from the queue's")
    resolved = httpx.get(t.url + "/v1/handoffs", params={"status": "resolved", "limit": 10},
                         headers=t.agent()).json()["data"]
    check([h["id"] for h in resolved] == sorted(created[:200], reverse=True)[:10],
          "resolved handoffs are not the newest first")


# -- 1. a NUL character ----------------------------------------------------------------------------
@case
def control_characters_are_refused_whole(t: Target) -> None:
    c = t.client()
    for text in ("转人工\u0000", f"{PII}\u0000转人工", "\ud800", "在吗\x1b[31m"):
        # Escaped JSON, as an attacker would send it (a lone surrogate cannot be UTF-8).
        r = c.post("/v1/chat", content=json.dumps({"message": text}), headers={"content-type": "application/json"})
        check(r.status_code == 422 and r.json()["error"], f"chat with {text!r} answered {r.status_code}")
    hid = hand_off(c)["handoff"]["id"]
    r = httpx.post(f"{t.url}/v1/handoffs/{hid}/messages", headers=t.agent(), json={"text": f"好的{PII}\u0000"})
    check(r.status_code == 422, f"an agent's reply with NUL answered {r.status_code}")
    h = httpx.get(f"{t.url}/v1/handoffs/{hid}", headers=t.agent()).json()
    check(h["status"] == "waiting" and h["agent"] is None, "a refused reply still claimed the handoff")
    r = httpx.post(f"{t.url}/v1/handoffs/{hid}/resolve", headers=t.agent(), json={"note": f"{PII}\u0000"})
    check(r.status_code == 422, f"a resolve note with NUL answered {r.status_code}")
    check(httpx.get(f"{t.url}/v1/handoffs/{hid}", headers=t.agent()).json()["status"] == "waiting",
          "a refused resolve still closed the handoff")
    for path in ("/v1/chat/abc%00def/messages", "/v1/chat/" + "x" * 300 + "/messages"):
        r = c.get(path)
        check(r.status_code in (404, 422), f"GET {path[:30]}... answered {r.status_code}")
    if t.log:
        text = t.log_text()
        check(PHONE not in text and "世纪大道100号" not in text, "personal data in the server log")


@case
def invisible_messages_are_empty(t: Target) -> None:
    c = t.client()
    for text in ("\u200b\u200b\u200b", "\ufeff", " \u3000 ", "\u200d\u2060\u200e", "\u3164\u3164", "\u2800",
                 "\ufe0f", "\u0301\u034f", "\U000e0100", "\uffa0\u115f\u1160"):
        r = c.post("/v1/chat", json={"message": text})
        check(r.status_code == 422, f"a message of {text!r} answered {r.status_code}")


# -- 2. concurrent messages of one session -----------------------------------------------------------
@case
def one_open_handoff_per_session(t: Target) -> None:
    for _round in range(3):
        c = t.client()
        first = c.post("/v1/chat", json={"message": "在吗"}).json()
        sid = first["session_id"]
        barrier = threading.Barrier(8)
        codes: list[int] = []

        def send(sid: str = sid, barrier: threading.Barrier = barrier, codes: list[int] = codes) -> None:
            own = t.client()
            barrier.wait()
            codes.append(own.post("/v1/chat", json={"session_id": sid, "message": "转人工"}).status_code)

        threads = [threading.Thread(target=send) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        check(codes == [200] * 8, f"concurrent messages answered {codes}")
        r = httpx.get(t.url + "/v1/handoffs", headers=t.agent()).json()["data"]
        mine = [h for h in r if h["session_id"] == sid]
        check(len(mine) == 1, f"{len(mine)} open handoffs for one session")
        texts = [m["text"] for m in c.get(f"/v1/chat/{sid}/messages").json()["messages"] if m["role"] == "shopper"]
        check(texts.count("转人工") == 8, f"{texts.count('转人工')} of 8 concurrent messages stored")


@case
def a_message_racing_a_resolution_is_never_orphaned(t: Target) -> None:
    """The shopper writes as the agent resolves: the message reaches the agent before the resolution,
    or the bot after it; never a person who has left."""
    for _round in range(25):
        c = t.client()
        first = hand_off(c)
        sid, hid = first["session_id"], first["handoff"]["id"]
        httpx.post(f"{t.url}/v1/handoffs/{hid}/claim", headers=t.agent()).raise_for_status()
        barrier = threading.Barrier(2)
        said: list[dict[str, Any]] = []

        def shopper(c: httpx.Client = c, sid: str = sid, barrier: threading.Barrier = barrier,
                    said: list[dict[str, Any]] = said) -> None:
            barrier.wait()
            said.append(c.post("/v1/chat", json={"session_id": sid, "message": "快递到哪了"}).json())

        th = threading.Thread(target=shopper)
        th.start()
        barrier.wait()
        httpx.post(f"{t.url}/v1/handoffs/{hid}/resolve", headers=t.agent(), json={}).raise_for_status()
        th.join()
        history = c.get(f"/v1/chat/{sid}/messages").json()["messages"]
        closed_at = next(m["id"] for m in history if m["role"] == "system")
        mine = next(m["id"] for m in history if m["role"] == "shopper" and m["text"] == "快递到哪了")
        if said[0]["action"] in ("handoff", "ack"):  # gone to the person (acknowledged or not)
            check(mine < closed_at, "a message for the agent was stored after the handoff was resolved")


@case
def queue_places_are_the_agents_under_concurrency(t: Target) -> None:
    barrier = threading.Barrier(8)
    told: dict[int, int] = {}

    def ask(c: httpx.Client, barrier: threading.Barrier = barrier) -> None:
        barrier.wait()
        h = hand_off(c)["handoff"]
        told[h["id"]] = h["position"]

    clients = [t.client() for _ in range(8)]
    threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    waiting = httpx.get(t.url + "/v1/handoffs", params={"status": "waiting"}, headers=t.agent()).json()["data"]
    queue = {h["id"]: h["position"] for h in waiting}
    check(len(told) == 8 and all(queue[i] == p for i, p in told.items()),
          f"shoppers were told {sorted(told.values())}, the queue says {sorted(queue[i] for i in told)}")


# -- 3. forged X-Forwarded-For ----------------------------------------------------------------------
@case
def forged_forwarded_for_does_not_lift_the_limit(t: Target) -> None:
    """From 127.0.0.1, which a server that trusts local proxies by default would believe."""
    c = t.client("127.0.0.1" if t.address() else None)
    codes = []
    for _ in range(60):
        forged = f"{secrets.randbelow(223) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(256)}.7"
        codes.append(c.post("/v1/chat", json={"message": "在吗"}, headers={"X-Forwarded-For": forged}).status_code)
    check(429 in codes, "60 requests with forged X-Forwarded-For from one address were never limited")


# -- 4. the webhook -----------------------------------------------------------------------------------
@case
def webhook_carries_no_session_id(t: Target) -> None:
    if t.webhook_port is None:
        raise Finding("not run: give --webhook-port and point the server's KEFU_WEBHOOK_URL at it")
    reply = hand_off(t.client(), f"快递丢了 {PII}")
    deadline = time.monotonic() + 30
    event = None
    while time.monotonic() < deadline and event is None:
        event = next((e for e in t._inbox if e.get("handoff", {}).get("id") == reply["handoff"]["id"]), None)
        time.sleep(0.1)
    check(event is not None, "no webhook for a new handoff")
    body = json.dumps(event, ensure_ascii=False)
    check(reply["session_id"] not in body and "session_id" not in body, "the webhook carries the session id")
    check(PHONE not in body and "世纪大道100号" not in body, "the webhook carries unmasked personal data")
    check(str(event["handoff"].get("url", "")).endswith(f"#handoff-{reply['handoff']['id']}"),
          "the webhook has no link for agents")


# -- 5. the transcript of a long chat -----------------------------------------------------------------
@case
def transcript_ends_with_the_latest_message(t: Target) -> None:
    c = t.client()
    first = hand_off(c)
    sid, hid = first["session_id"], first["handoff"]["id"]
    for n in range(505):
        r = httpx.post(f"{t.url}/v1/handoffs/{hid}/messages", headers=t.agent(), json={"text": f"第{n}条"})
        check(r.status_code == 200, f"agent reply answered {r.status_code}")
    httpx.post(f"{t.url}/v1/handoffs/{hid}/resolve", headers=t.agent(), json={}).raise_for_status()
    again = hand_off(c, "我要投诉，东西坏了", session_id=sid)
    detail = httpx.get(f"{t.url}/v1/handoffs/{again['handoff']['id']}", headers=t.agent()).json()
    texts = [m["text"] for m in detail["transcript"]]
    check("我要投诉，东西坏了" in texts, "the transcript lacks the message that was handed off")
    check(texts[-1] == again["reply"], "the transcript does not end with the latest message")


# -- 6. agent tokens in URLs ----------------------------------------------------------------------------
@case
def agent_tokens_only_in_headers(t: Target) -> None:
    token = t.agents[0]
    for path in ("/v1/handoffs", "/v1/catalogue", "/v1/handoffs/1", "/v1/agent/events"):
        for query in (f"token={token}", f"%74oken={token}"):
            status = stream_status(f"{t.url}{path}?{query}")
            check(status in (401, 403), f"GET {path}?{query[:6]}... answered {status}")
    ticket = httpx.post(t.url + "/v1/agent/ticket", headers=t.agent()).json()["ticket"]
    check(token not in ticket, "the ticket holds the token")
    check(read_first_event(f"{t.url}/v1/agent/events?ticket={ticket}") == "ready", "a ticket opens no stream")
    again = stream_status(f"{t.url}/v1/agent/events?ticket={ticket}")
    check(again == 403, f"a ticket opened a second stream ({again})")
    name, expires, signature = ticket.split(".")
    for forged in (f"{name}.{int(expires) + 3600}.{signature}", f"{name}.{expires}.{signature[:-2]}AA",
                   f"{name}.{int(time.time()) - 5}.{signature}", "x.y.z", ""):
        status = stream_status(f"{t.url}/v1/agent/events?ticket={forged}")
        check(status in (401, 403), f"a forged ticket {forged[:12]}... opened the stream")
    if t.log:
        text = t.log_text()
        check(token not in text and ticket not in text and signature not in text, "a token or ticket in the log")


def stream_status(url: str) -> int:
    """The status of a GET that may open an event stream (which never ends)."""
    with httpx.Client(timeout=10) as c, c.stream("GET", url) as r:
        return r.status_code


def read_first_event(url: str) -> str:
    with httpx.Client(timeout=httpx.Timeout(10, read=30)) as c, c.stream("GET", url) as r:
        check(r.status_code == 200, f"event stream answered {r.status_code}")
        for line in r.iter_lines():
            if line.startswith("event:"):
                return line[6:].strip()
    raise Finding("event stream ended without an event")


# -- 7. session ids in the access log -------------------------------------------------------------------
@case
def access_log_holds_no_session_id(t: Target) -> None:
    if not t.log:
        raise Finding("not run: give --log with the server's log file")
    c = t.client()
    sid = c.post("/v1/chat", json={"message": "包邮吗"}).json()["session_id"]
    c.get(f"/v1/chat/{sid}/messages")
    c.get(f"/v1/chat/{sid}/messages?after=1&session={sid}")
    check(sid not in t.log_text(), "a session id in the server log")


# -- 8. /docs -------------------------------------------------------------------------------------------
@case
def docs_are_served_by_kefu(t: Target) -> None:
    r = httpx.get(t.url + "/docs")
    check(r.status_code == 200, f"/docs answered {r.status_code}")
    csp = r.headers.get("content-security-policy", "")
    check("default-src 'self'" in csp and "cdn" not in csp.lower(), f"/docs CSP: {csp}")
    check("http://" not in r.text and "https://" not in r.text and "<script>" not in r.text,
          "/docs loads scripts from elsewhere, or inline")
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/static/docs.js",
                  "/openapi.json"):
        check(httpx.get(t.url + asset).status_code == 200, f"{asset} is not served")


# -- 10. slow requests ----------------------------------------------------------------------------------
@contextmanager
def raw_connection(t: Target) -> Iterator[socket.socket]:
    parts = urlsplit(t.url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=5,
                                    source_address=(address, 0) if (address := t.address()) else None)
    try:
        yield sock
    finally:
        sock.close()


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing the connection, or None if it kept it open."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except TimeoutError:
        return None
    except OSError:
        pass
    return got


@case
def slow_requests_are_cut_off(t: Target) -> None:
    grace = t.request_timeout * 2 + 10
    with raw_connection(t) as idle:
        check(closed_within(idle, grace) is not None, "a connection that sends nothing is kept open")
    with raw_connection(t) as partial:
        partial.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Ty")
        check(closed_within(partial, grace) is not None, "a request with half its headers is kept open")
    with raw_connection(t) as body:
        body.sendall(b"POST /v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"message\": \"")
        answer = closed_within(body, grace)
        check(answer is not None and b" 408 " in answer.split(b"\r\n", 1)[0],
              f"a body that stops half-way got {answer[:40] if answer else 'no answer'}")
    with raw_connection(t) as unread:  # a body the route never reads, trickled after the answer
        unread.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        unread.settimeout(5)
        check(b" 200 " in unread.recv(4096).split(b"\r\n", 1)[0], "GET /livez did not answer")
        unread.sendall(b"x")
        check(closed_within(unread, grace) is not None, "a body the route never reads keeps the connection open")
    check(httpx.get(t.url + "/livez").status_code == 200, "the server stopped answering")


# -- the webhook receiver and the command line -------------------------------------------------------------
def start_receiver(port: int, inbox: list[dict[str, Any]]) -> HTTPServer:
    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            inbox.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def run(target: Target, names: list[str] | None = None) -> dict[str, str]:
    """Run the cases (all by default); name -> "held" or the finding."""
    receiver = start_receiver(target.webhook_port, target._inbox) if target.webhook_port else None
    results = {}
    try:
        for name in names or list(CASES):
            try:
                CASES[name](target)
                results[name] = "held"
            except Finding as exc:
                results[name] = str(exc)
            finally:
                target.close_clients()
    finally:
        if receiver is not None:
            receiver.shutdown()
            receiver.server_close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("--agent", action="append", required=True, help="an agent token (twice: two agents)")
    ap.add_argument("--admin")
    ap.add_argument("--log", help="the server's log file")
    ap.add_argument("--webhook-port", type=int)
    ap.add_argument("--request-timeout", type=float, default=15.0, help="the server's KEFU_REQUEST_TIMEOUT")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases")
    args = ap.parse_args()
    target = Target(args.url.rstrip("/"), [a.partition(":")[2] or a for a in args.agent], args.admin, args.log,
                    args.webhook_port, args.request_timeout)
    results = run(target, args.case)
    for name, outcome in results.items():
        print(f"{'ok  ' if outcome == 'held' else 'FAIL'} {name}: {outcome}")
    sys.exit(0 if all(v == "held" for v in results.values()) else 1)


if __name__ == "__main__":
    main()
