"""The shopper's side of a handoff over HTTP, against a real server process on SQLite and PostgreSQL:
the place in the queue and the agent who joins, live on the event stream and read back after a reload;
the acknowledgement of a burst; and pictures: sent, refused, kept to their session, served safely."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.api.test_handoffs import EventReader
from tests.server import Server

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
MAX_IMAGE = 200_000  # KEFU_MAX_IMAGE_BYTES of this server


@pytest.fixture()
def server(models_dir: Path, db_url: str, tmp_path: Path) -> Iterator[Server]:
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db_url,
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN}", "KEFU_AGENT_NAMES": "alice:小美",
           "KEFU_MAX_IMAGE_BYTES": str(MAX_IMAGE)}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def photo(fmt: str = "PNG", size: tuple[int, int] = (120, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (180, 60, 20)).save(out, fmt)
    return out.getvalue()


def handed_off(http: httpx.Client) -> tuple[str, int]:
    r = http.post("/v1/chat", json={"message": "收到的衣服破了个洞"}).json()
    assert r["route"] == "human", r
    return r["session_id"], r["handoff"]["id"]


def upload(http: httpx.Client, sid: str, data: bytes, content_type: str = "image/png") -> httpx.Response:
    return http.post(f"/v1/chat/{sid}/images", content=data, headers={"Content-Type": content_type})


def refused(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code and body["message"], body
    return body  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_place_and_the_agent_are_live_and_survive_a_reload(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        first, first_id = handed_off(http)
        second, _ = handed_off(http)
        # The handoff's reply says it once; the place is the handoff's (the widget's banner).
        reply = http.post("/v1/chat", json={"message": "转人工"}).json()
        assert reply["reply"].count("转接") == 1 and "排队" not in reply["reply"]
        assert http.get(f"/v1/chat/{second}/handoff").json()["handoff"] == {
            "id": first_id + 1, "status": "waiting", "position": 2, "agent": None}
        stream_1 = EventReader(f"{server.url}/v1/chat/{first}/events")
        stream_2 = EventReader(f"{server.url}/v1/chat/{second}/events")
        try:
            assert http.post(f"/v1/handoffs/{first_id}/claim", headers=ALICE).status_code == 200
            # The first shopper hears who took the chat, by the shop's name for her, before she writes.
            joined = stream_1.wait_for("handoff")["handoff"]
            assert joined == {"id": first_id, "status": "assigned", "position": 0, "agent": "小美"}
            assert stream_2.wait_for("handoff")["handoff"]["position"] == 1  # the second moves up
        finally:
            stream_1.close()
            stream_2.close()
        # After a reload: the same, read back.
        assert http.get(f"/v1/chat/{first}/handoff").json()["handoff"]["agent"] == "小美"
        assert http.get(f"/v1/chat/{second}/handoff").json()["handoff"]["position"] == 1
        fresh = http.post("/v1/chat", json={"message": "什么时候发货"}).json()["session_id"]
        assert http.get(f"/v1/chat/{fresh}/handoff").json() == {"handoff": None}
        refused(http.get("/v1/chat/" + "x" * 43 + "/handoff"), 404, "not_found")


@pytest.mark.slow
def test_messages_while_waiting_are_acknowledged_once_per_burst(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        sid, hid = handed_off(http)
        replies = [http.post("/v1/chat", json={"session_id": sid, "message": m}).json()
                   for m in ("在吗", "订单号发你了 1234567", "快点")]
        assert [r["action"] for r in replies] == ["ack", "handoff", "handoff"]
        assert replies[0]["reply"].startswith("已收到") and replies[1]["reply"] is None
        history = http.get(f"/v1/chat/{sid}/messages").json()["messages"]
        assert [m["text"] for m in history].count(replies[0]["reply"]) == 1


@pytest.mark.slow
def test_a_picture_reaches_the_agent_and_stays_the_shoppers(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # Given a shopper whose chat waits for a person, and an agent listening.
        sid, hid = handed_off(http)
        ticket = http.post("/v1/agent/ticket", headers=ALICE).json()["ticket"]
        agents = EventReader(f"{server.url}/v1/agent/events?ticket={ticket}")
        try:
            for fmt, content_type in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
                r = upload(http, sid, photo(fmt), "application/octet-stream")
                assert r.status_code == 201, r.text
                sent = r.json()
                assert sent["role"] == "shopper" and sent["text"] == "[图片]"
                assert sent["image"]["type"] == content_type and (sent["image"]["width"], sent["image"]["height"]) == (
                    120, 90)
                event = agents.wait_for("message")
                while not event["message"].get("image"):  # (the acknowledgement of the first)
                    event = agents.wait_for("message")
                assert event["handoff_id"] == hid and event["message"]["image"] == sent["image"]
        finally:
            agents.close()
        # The agent sees it in the transcript and fetches it with the token; the queue says [图片].
        detail = http.get(f"/v1/handoffs/{hid}", headers=ALICE).json()
        pictures = [m["image"] for m in detail["transcript"] if m.get("image")]
        assert [p["type"] for p in pictures] == ["image/png", "image/jpeg"] and detail["last_message"] == "[图片]"
        for p in pictures:
            served = http.get(f"/v1/images/{p['id']}", headers=ALICE)
            assert served.status_code == 200 and served.headers["content-type"] == p["type"]
            with Image.open(io.BytesIO(served.content)) as im:
                assert im.size == (120, 90)
            # ...and so does its shopper, with their session id: served as the checked type, never run.
            own = http.get(f"/v1/chat/{sid}/images/{p['id']}")
            assert own.status_code == 200 and own.content == served.content
            h = own.headers
            assert h["content-type"] == p["type"] and h["x-content-type-options"] == "nosniff"
            ext = "png" if p["type"] == "image/png" else "jpg"
            assert h["content-disposition"] == f'inline; filename="kefu-image-{p["id"]}.{ext}"'
            assert "default-src 'none'" in h["content-security-policy"] and "sandbox" in h["content-security-policy"]
            assert "script-src" not in h["content-security-policy"]
        # Another shopper, or nobody, reads nothing.
        other, _ = handed_off(http)
        refused(http.get(f"/v1/chat/{other}/images/{pictures[0]['id']}"), 404, "not_found")
        refused(http.get(f"/v1/images/{pictures[0]['id']}"), 401, "unauthorized")
        refused(http.get(f"/v1/images/{pictures[0]['id']}", headers={"Authorization": "Bearer wrong-token-123"}),
                403, "forbidden")
        refused(http.get(f"/v1/chat/{sid}/images/999999"), 404, "not_found")


@pytest.mark.slow
def test_what_is_not_a_picture_is_refused_clearly(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        sid, _ = handed_off(http)
        jpeg = photo("JPEG")
        refused(upload(http, sid, "亲，这是文字".encode(), "text/plain"), 422, "image_not_image")
        refused(upload(http, sid, b""), 422, "image_empty")
        body = refused(upload(http, sid, jpeg + b"<html><script>alert(1)</script></html>", "image/jpeg"), 422,
                       "image_polyglot")
        assert "安全" in body["message"] and "follow" in body["detail"]  # the shop's words; why, in English
        refused(upload(http, sid, jpeg + b"PK\x05\x06" + bytes(18)), 422, "image_polyglot")
        refused(upload(http, sid, b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                       "image/svg+xml"), 422, "image_not_image")
        big = photo("PNG", size=(60, 60)) + bytes(MAX_IMAGE)
        refused(upload(http, sid, big), 413, "too_large")  # the body stops at the limit
        # A chat nobody is to take: pictures go to a person.
        bot_only = http.post("/v1/chat", json={"message": "什么时候发货"}).json()["session_id"]
        refused(upload(http, bot_only, photo()), 409, "image_no_person")
        refused(upload(http, "y" * 43, photo()), 404, "not_found")
        # Nothing refused was kept.
        history = http.get(f"/v1/chat/{sid}/messages").json()["messages"]
        assert not [m for m in history if m.get("image")]
