"""The agents' help over HTTP, against a real server process: the bot's answers as drafts, 快捷短语,
a transfer with a note, and agents' display names as shoppers see them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.api.test_handoffs import EventReader, chat
from tests.server import Server

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
BOB = {"Authorization": f"Bearer {OTHER_TOKEN}"}
CAROL_TOKEN = "test-token-carol-5555555555"
CAROL = {"Authorization": f"Bearer {CAROL_TOKEN}"}
MANAGER_TOKEN = "test-token-manager-777777777"
MANAGER = {"Authorization": f"Bearer {MANAGER_TOKEN}"}

PHRASES = """\
- title: 欢迎
  keywords: [你好, 开场]
  text: 亲，您好～欢迎光临{name}，我是客服{agent}
- title: 退货地址
  keywords: [退货, 寄回]
  text: 亲，{returns.window_days}天内可以退货，请寄到：{returns.address}
"""


@pytest.fixture()
def phrases_file(tmp_path: Path) -> Path:
    path = tmp_path / "phrases.yml"
    path.write_text(PHRASES, encoding="utf-8")
    return path


@pytest.fixture()
def server(models_dir: Path, db_url: str, tmp_path: Path, phrases_file: Path) -> Iterator[Server]:
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db_url, "KEFU_PHRASES_FILE": str(phrases_file),
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN},carol:{CAROL_TOKEN}",
           "KEFU_AGENT_NAMES": "alice:小美,bob:阿强", "KEFU_ADMIN_TOKEN": MANAGER_TOKEN}
    srv = Server(env, log=tmp_path / "server.log").start()
    yield srv
    srv.stop()


def get(srv: Server, path: str, headers: dict[str, str] = ALICE, **params: Any) -> dict[str, Any]:
    r = httpx.get(srv.url + path, params=params, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def reply(srv: Server, handoff_id: int, headers: dict[str, str], text: str) -> httpx.Response:
    return httpx.post(srv.url + f"/v1/handoffs/{handoff_id}/messages", headers=headers, json={"text": text})


def test_drafts_answer_the_shoppers_latest_message(server: Server) -> None:
    # Given a chat handed off, whose shopper then asks a question the bot knows.
    first = chat(server, "我要投诉你们客服")
    hid = first["handoff"]["id"]
    httpx.post(server.url + f"/v1/handoffs/{hid}/claim", headers=ALICE).raise_for_status()
    chat(server, "那今天下单什么时候能发货", first["session_id"])
    # When the agent asks for drafts
    out = get(server, f"/v1/handoffs/{hid}/drafts")
    # Then they answer that latest message, filled from shop.yml as the bot would send them.
    assert out["message"]["text"] == "那今天下单什么时候能发货"
    assert out["drafts"][0]["intent"] == "shipping.when" and "16:00" in out["drafts"][0]["text"]
    assert 1 <= len(out["drafts"]) <= 3 and all(not d["intent"].startswith("human.") for d in out["drafts"])
    assert out["drafts"][0]["title"] and 0 < out["drafts"][0]["confidence"] <= 1
    # A message of only emoji has nothing to draft from; an unknown handoff is a 404.
    chat(server, "😂😂", first["session_id"])
    assert get(server, f"/v1/handoffs/{hid}/drafts")["drafts"] == []
    assert httpx.get(server.url + "/v1/handoffs/999999/drafts", headers=ALICE).status_code == 404


def test_phrases_are_filled_and_found_by_keyword(server: Server, phrases_file: Path) -> None:
    # The shop's name and the agent's display name are filled in.
    every = get(server, "/v1/phrases")
    assert every["count"] == 2
    assert every["data"][0]["text"] == "亲，您好～欢迎光临小鲸鱼服饰旗舰店，我是客服小美"
    assert get(server, "/v1/phrases", headers=CAROL)["data"][0]["text"].endswith("我是客服carol")
    # A keyword, in the title, the keywords or the text, in traditional characters too.
    assert [p["title"] for p in get(server, "/v1/phrases", q="寄回")["data"]] == ["退货地址"]
    assert [p["title"] for p in get(server, "/v1/phrases", q="退貨")["data"]] == ["退货地址"]
    assert "7天内可以退货" in get(server, "/v1/phrases", q="余杭区")["data"][0]["text"]
    assert get(server, "/v1/phrases", q="没有这个词")["data"] == []
    # The shop edits the file: the next read has the new phrase; a broken edit keeps the last good ones.
    phrases_file.write_text(PHRASES + "- title: 好评\n  text: 亲，满意的话给个好评哦～\n", encoding="utf-8")
    assert [p["title"] for p in get(server, "/v1/phrases")["data"]] == ["欢迎", "退货地址", "好评"]
    phrases_file.write_text("- title: 坏的\n  text: [\n", encoding="utf-8")
    assert get(server, "/v1/phrases")["count"] == 3
    assert httpx.get(server.url + "/v1/phrases", params={"q": "长" * 51}, headers=ALICE).status_code == 422
    assert httpx.get(server.url + "/v1/phrases").status_code == 401


def test_a_transfer_with_a_note_reaches_the_colleague_only(server: Server) -> None:
    # Given alice's chat with a shopper.
    first = chat(server, "衣服收到是破的，我要退款")
    sid, hid = first["session_id"], first["handoff"]["id"]
    assert reply(server, hid, ALICE, "亲，我看一下").status_code == 200
    agents = EventReader(server.url + "/v1/agent/events", BOB)
    # When she gives it to bob with a note
    r = httpx.post(server.url + f"/v1/handoffs/{hid}/transfer", headers=ALICE,
                   json={"to": "bob", "note": "  顾客要退款，订单已核实  "})
    assert r.status_code == 200, r.text
    assert (r.json()["to"], r.json()["from"], r.json()["handoff"]["agent"]) == ("bob", "alice", "bob")
    # Then bob sees it on his stream and in the chat's transcript, with the note...
    event = agents.wait_for("transferred")
    assert (event["handoff"]["id"], event["to"], event["note"]) == (hid, "bob", "顾客要退款，订单已核实")
    detail = get(server, f"/v1/handoffs/{hid}", headers=BOB)
    assert (detail["status"], detail["agent"]) == ("assigned", "bob")
    assert [(m["role"], m["author"], m["to"], m["text"]) for m in detail["transcript"] if m["role"] == "transfer"] \
        == [("transfer", "alice", "bob", "顾客要退款，订单已核实")]
    assert [h["id"] for h in get(server, "/v1/handoffs", agent="bob")["data"]] == [hid]
    # ...and the chat is his: he replies, alice no longer can.
    assert reply(server, hid, BOB, "亲，退款马上处理").status_code == 200
    assert reply(server, hid, ALICE, "还是我").status_code == 409
    # The shopper never sees the note, and sees each agent by the display name.
    history = get(server, f"/v1/chat/{sid}/messages")["messages"]
    assert "transfer" not in {m["role"] for m in history}
    assert all("核实" not in m["text"] for m in history)
    assert [(m["author"], m["text"]) for m in history if m["role"] == "agent"] == [
        ("小美", "亲，我看一下"), ("阿强", "亲，退款马上处理")]
    agents.close()


def test_what_a_transfer_refuses(server: Server) -> None:
    hid = chat(server, "转人工")["handoff"]["id"]
    # A waiting chat may be given to anyone; then only its agent gives it on.
    ok = httpx.post(server.url + f"/v1/handoffs/{hid}/transfer", headers=CAROL, json={"to": "bob"})
    assert ok.status_code == 200 and ok.json()["handoff"]["agent"] == "bob" and ok.json()["note"] == ""

    def transfer(headers: dict[str, str], body: Any, handoff: int = hid) -> httpx.Response:
        return httpx.post(server.url + f"/v1/handoffs/{handoff}/transfer", headers=headers, json=body)

    for headers, body, status in [
        (CAROL, {"to": "alice"}, 409),  # bob's chat, not carol's
        (BOB, {"to": "bob"}, 422),  # to oneself
        (BOB, {"to": "dave"}, 422),  # nobody of that name
        (BOB, {"to": "alice", "note": "长" * 2001}, 422),
        (BOB, {"to": "alice", "extra": 1}, 422),
        (BOB, {"to": ""}, 422),
        (BOB, {"to": 7}, 422),
        (BOB, [], 422),
        (None, {"to": "alice"}, 401),
    ]:
        r = transfer(headers or {}, body)
        assert r.status_code == status and r.json()["error"], (body, r.text)
    assert transfer(BOB, {"to": "alice"}, handoff=999999).status_code == 404
    httpx.post(server.url + f"/v1/handoffs/{hid}/resolve", headers=BOB).raise_for_status()
    assert transfer(BOB, {"to": "alice"}).status_code == 409  # resolved


def test_the_agents_and_their_display_names(server: Server) -> None:
    # Bob's console is there (a heartbeat); the others have not been heard from: away.
    httpx.post(server.url + "/v1/agent/heartbeat", headers=BOB).raise_for_status()
    out = get(server, "/v1/agents", headers=BOB)
    assert out["me"] == "bob"
    assert out["data"] == [{"name": "alice", "display_name": "小美", "status": "away", "chats": 0},
                           {"name": "bob", "display_name": "阿强", "status": "online", "chats": 0},
                           {"name": "carol", "display_name": "carol", "status": "away", "chats": 0}]


def test_the_manager_edits_the_phrases(server: Server, phrases_file: Path) -> None:
    # Given the phrases as written, placeholders and all, with the file's version.
    got = get(server, "/v1/admin/phrases", headers=MANAGER)
    assert [p["title"] for p in got["data"]] == ["欢迎", "退货地址"] and got["data"][0]["text"].endswith("{agent}")

    def save(phrases: list[dict[str, Any]], version: str, headers: dict[str, str] = MANAGER) -> httpx.Response:
        return httpx.put(server.url + "/v1/admin/phrases", headers=headers,
                         json={"phrases": phrases, "version": version}, timeout=30)

    # When the manager adds one, it is in the file and agents find it at once, filled.
    new = {"title": "好评", "keywords": ["评价"], "text": "亲，{name}期待您的好评～"}
    saved = save([*got["data"], new], got["version"])
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] != got["version"] and len(saved.json()["data"]) == 3
    assert "期待您的好评" in phrases_file.read_text(encoding="utf-8")
    assert [p["text"] for p in get(server, "/v1/phrases", q="评价")["data"]] == ["亲，小鲸鱼服饰旗舰店期待您的好评～"]
    # A save over an old version is refused (someone saved in between), and so is a placeholder the
    # shop does not have; neither changes the file.
    before = phrases_file.read_bytes()
    assert save([new], got["version"]).status_code == 409
    unknown = save([{"title": "催单", "text": "亲，{shipping.nowhere}"}], saved.json()["version"])
    assert unknown.status_code == 422 and "shipping.nowhere" in unknown.json()["message"]
    for bad in ([{"title": "", "text": "亲"}], [{"title": "长" * 31, "text": "亲"}], [{"title": "t", "text": "亲",
                "keywords": [""]}], [{"title": "t", "text": "亲", "more": 1}], [{"title": "t"}]):
        assert save(bad, saved.json()["version"]).status_code == 422, bad
    assert phrases_file.read_bytes() == before
    # Only a manager edits them.
    assert save([new], saved.json()["version"], headers=ALICE).status_code == 403
    assert httpx.get(server.url + "/v1/admin/phrases", headers=ALICE).status_code == 403
