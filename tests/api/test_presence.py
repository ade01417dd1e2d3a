"""Presence, automatic assignment, reception modes and quiet agents, against a real server process on
SQLite and PostgreSQL: round robin under a limit, nobody busy or away given a chat, a chat given when
a slot frees, human_first and bot_only_when_no_agent_online with and without agents online, a quiet
agent's chat back in the queue (and to the next free agent), and an honest notice when nobody is in."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.dialogue import knowledge
from bot.dialogue.voice import say
from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.api.test_handoffs import EventReader, chat
from tests.conftest import DATA
from tests.server import Server

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}
BOB = {"Authorization": f"Bearer {OTHER_TOKEN}"}
CAROL_TOKEN = "test-token-carol-5555555555"
CAROL = {"Authorization": f"Bearer {CAROL_TOKEN}"}
KB = knowledge.load(DATA)
SHOP = KB.shop
OFFLINE = say(SHOP, "offline")  # 亲，现在暂时没有人工客服在线，您可以先留言……

Start = Callable[..., Server]


def open_all_day(tmp_path: Path) -> Path:
    """The shop's data with its service hours round the clock: the notices under test are the desk's,
    whatever the hour the tests run at (outside the hours the shopper hears when agents are back)."""
    data = tmp_path / "faq"
    shutil.copytree(DATA, data)
    shop = data / "shop.yml"
    shop.write_text(shop.read_text(encoding="utf-8").replace('open: "09:00"', 'open: "00:00"')
                    .replace('close: "23:00"', 'close: "24:00"'), encoding="utf-8")
    return data


@pytest.fixture()
def start(models_dir: Path, db_url: str, tmp_path: Path) -> Iterator[Start]:
    """A server with the shop's agents alice, bob and carol and the desk settings given."""
    started: list[Server] = []
    data = open_all_day(tmp_path)

    def run(**settings: str) -> Server:
        env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": db_url, "KEFU_DATA_DIR": str(data),
               "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN},carol:{CAROL_TOKEN}",
               **{f"KEFU_{k.upper()}": v for k, v in settings.items()}}
        srv = Server(env, log=tmp_path / f"server{len(started)}.log").start()
        started.append(srv)
        return srv

    yield run
    for srv in started:
        srv.stop()


def status(srv: Server, who: dict[str, str], value: str) -> dict[str, Any]:
    r = httpx.put(srv.url + "/v1/agent/presence", headers=who, json={"status": value}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def handoff(srv: Server, handoff_id: int) -> dict[str, Any]:
    r = httpx.get(srv.url + f"/v1/handoffs/{handoff_id}", headers=ALICE, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def holder(srv: Server, handoff_id: int) -> str | None:
    return handoff(srv, handoff_id)["agent"]  # type: ignore[no-any-return]


def agents(srv: Server) -> dict[str, tuple[str, int]]:
    body = httpx.get(srv.url + "/v1/agents", headers=ALICE, timeout=30).json()
    return {a["name"]: (a["status"], a["chats"]) for a in body["data"]}


def resolve(srv: Server, handoff_id: int, who: dict[str, str]) -> None:
    httpx.post(srv.url + f"/v1/handoffs/{handoff_id}/resolve", headers=who, timeout=30).raise_for_status()


def test_round_robin_under_a_limit_and_only_to_online_agents(start: Start) -> None:
    server = start(assignment="auto", max_chats="2", requeue_after="0")
    # Nobody is at the desk: the shopper is told so, honestly, and the chat waits.
    first = chat(server, "转人工")
    h1 = first["handoff"]["id"]
    assert first["reply"].endswith("\n" + OFFLINE) and "排队" not in first["reply"]
    assert holder(server, h1) is None and agents(server) == {"alice": ("away", 0), "bob": ("away", 0),
                                                              "carol": ("away", 0)}
    # Alice comes online: the waiting chat is hers at once, and her console hears of it.
    stream = EventReader(server.url + "/v1/agent/events", ALICE)
    me = status(server, ALICE, "online")
    assert (me["status"], me["chosen"], me["assignment"], me["max_chats"]) == ("online", "online", "auto", 2)
    event = stream.wait_for("assigned")
    assert (event["handoff"]["id"], event["to"], event["handoff"]["status"]) == (h1, "alice", "assigned")
    assert holder(server, h1) == "alice"
    # Bob is online too, carol busy: new chats go round robin to alice and bob, none to carol, and
    # each shopper hears they are in the queue (someone is in).
    status(server, BOB, "online")
    status(server, CAROL, "busy")
    replies = [chat(server, text) for text in ("我要投诉", "转人工", "人工客服", "我要人工", "转人工客服")]
    ids = [r["handoff"]["id"] for r in replies]
    assert all(OFFLINE not in r["reply"] for r in replies)
    assert replies[0]["reply"] == KB.answer("human.complaint")  # one sentence: the place is the widget's banner
    # bob (0 chats), alice (her 2nd), bob (his 2nd); then both are at the limit: the rest wait.
    assert [holder(server, h) for h in ids] == ["bob", "alice", "bob", None, None]
    assert [r["handoff"]["position"] for r in replies] == [0, 0, 0, 1, 2]
    assert agents(server) == {"alice": ("online", 2), "bob": ("online", 2), "carol": ("busy", 0)}
    # A slot frees: the oldest waiting chat goes to whoever freed it.
    resolve(server, h1, ALICE)
    assert [holder(server, h) for h in ids[3:]] == ["alice", None]
    # A transfer frees the giver's slot (the colleague takes it over their limit: a person chose so).
    r = httpx.post(server.url + f"/v1/handoffs/{ids[0]}/transfer", headers=BOB, json={"to": "carol"})
    assert r.status_code == 200, r.text
    assert holder(server, ids[4]) == "bob"
    # Away and busy agents get nothing: alice goes busy, bob leaves; a new chat waits, though
    # alice is still at the desk (busy), so the shopper hears of the queue, not of nobody.
    status(server, ALICE, "busy")
    left = httpx.delete(server.url + "/v1/agent/presence", headers=BOB, timeout=30).json()
    assert (left["status"], left["chosen"]) == ("away", "online")  # bob's choice is kept for his return
    status(server, CAROL, "away")
    resolve(server, ids[1], ALICE)  # alice has a free slot, but she is busy
    late = chat(server, "我要投诉你们")
    assert holder(server, late["handoff"]["id"]) is None and OFFLINE not in late["reply"]
    # Bob's console is back (a heartbeat): his chosen status counts again, and he gets the chat... no:
    # he holds two already. Alice goes online and gets it.
    assert httpx.post(server.url + "/v1/agent/heartbeat", headers=BOB).json()["status"] == "online"
    assert holder(server, late["handoff"]["id"]) is None
    status(server, ALICE, "online")
    assert holder(server, late["handoff"]["id"]) == "alice"
    stream.close()


def test_presence_routes_refuse_what_they_should(start: Start) -> None:
    server = start()
    for method, path, body, headers, code in [
        ("PUT", "/v1/agent/presence", {"status": "sleeping"}, ALICE, 422),
        ("PUT", "/v1/agent/presence", {"status": "online", "more": 1}, ALICE, 422),
        ("PUT", "/v1/agent/presence", [], ALICE, 422),
        ("PUT", "/v1/agent/presence", {"status": "online"}, {}, 401),
        ("PUT", "/v1/agent/presence", {"status": "online"}, {"Authorization": "Bearer wrong-token-123"}, 403),
        ("GET", "/v1/agent/presence", None, {}, 401),
        ("POST", "/v1/agent/heartbeat", None, {}, 401),
        ("DELETE", "/v1/agent/presence", None, {}, 401),
    ]:
        r = httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)
        assert r.status_code == code and r.json()["error"], (method, body, r.text)
    # Manual assignment (the default): online agents claim by hand; nothing is given out.
    status(server, ALICE, "online")
    hid = chat(server, "转人工")["handoff"]["id"]
    time.sleep(2.5)  # a sweep of the desk has run meanwhile (every 2 s)
    assert handoff(server, hid)["status"] == "waiting"
    mine = httpx.get(server.url + "/v1/agent/presence", headers=ALICE).json()
    assert (mine["status"], mine["assignment"], mine["chats"]) == ("online", "manual", 0)


def test_human_first_sends_a_first_message_to_a_person_while_one_is_online(start: Start) -> None:
    server = start(reception="human_first")
    # Nobody online: the bot answers the first message.
    alone = chat(server, "今天下单什么时候发货")
    assert (alone["route"], alone["intent"]) == ("faq", "shipping.when")
    # Busy does not count: the bot still answers.
    status(server, ALICE, "busy")
    assert chat(server, "今天下单什么时候发货")["route"] == "faq"
    # An agent online: a new chat's first message goes to the queue, told in one sentence.
    status(server, ALICE, "online")
    first = chat(server, "今天下单什么时候发货")
    assert (first["route"], first["action"], first["reason"]) == ("human", "handoff", "reception")
    assert first["reply"] == KB.answer("human.request") and first["handoff"]["status"] == "waiting"
    detail = handoff(server, first["handoff"]["id"])
    assert (detail["reason"], detail["last_message"]) == ("reception", "今天下单什么时候发货")
    assert detail["guesses"][0]["intent"] == "shipping.when"  # the bot's reading, for the agent
    # A chat the bot began goes on with the bot: only first messages are a person's.
    assert chat(server, "运费多少钱", alone["session_id"])["route"] == "faq"
    # The handoff is claimed by hand as ever (manual assignment).
    assert httpx.post(server.url + f"/v1/handoffs/{first['handoff']['id']}/claim", headers=ALICE).status_code == 200


def test_bot_only_while_no_agent_is_online(start: Start) -> None:
    server = start(reception="bot_only_when_no_agent_online", assignment="auto")
    sid = chat(server, "今天下单什么时候发货")["session_id"]
    # An agent comes online: the chat's next message goes to them (automatic assignment gives it).
    status(server, BOB, "online")
    taken = chat(server, "运费多少钱", sid)
    assert (taken["route"], taken["reason"]) == ("human", "reception")
    assert holder(server, taken["handoff"]["id"]) == "bob"
    resolve(server, taken["handoff"]["id"], BOB)
    # Still someone online: after the handoff, the shopper goes to a person again.
    again = chat(server, "可以开发票吗", sid)
    assert (again["route"], again["reason"]) == ("human", "reception")
    resolve(server, again["handoff"]["id"], BOB)
    # Nobody online: the bot answers.
    status(server, BOB, "away")
    back = chat(server, "可以开发票吗", sid)
    assert (back["route"], back["intent"]) == ("faq", "payment.invoice")


def test_a_quiet_agents_chat_goes_back_to_the_queue_and_to_the_next_free_agent(start: Start) -> None:
    server = start(assignment="auto", max_chats="1", requeue_after="3", presence_timeout="2")
    # Carol set herself online once and her console went silent: after the timeout she counts as away.
    status(server, CAROL, "online")
    deadline = time.monotonic() + 30
    while agents(server)["carol"][0] != "away":
        assert time.monotonic() < deadline, "carol still counts as online"
        time.sleep(0.5)
    # Alice and bob keep their consoles open (the event stream is their heartbeat).
    alice, bob = EventReader(server.url + "/v1/agent/events", ALICE), EventReader(server.url + "/v1/agent/events", BOB)
    status(server, ALICE, "online")
    status(server, BOB, "online")
    # A chat goes to alice (round robin: her name first at equal turns); bob answers his at once.
    quiet = chat(server, "我要投诉")
    answered = chat(server, "转人工")
    q, a = quiet["handoff"]["id"], answered["handoff"]["id"]
    assert (holder(server, q), holder(server, a)) == ("alice", "bob")
    r = httpx.post(server.url + f"/v1/handoffs/{a}/messages", headers=BOB, json={"text": "亲，您说"})
    assert r.status_code == 200, r.text
    # Alice never answers: her chat goes back to the queue, she is told, and it waits for a free agent.
    back = alice.wait_for("requeued", timeout=30)
    assert (back["handoff"]["id"], back["from"], back["message"]["role"], back["message"]["after"]) == (
        q, "alice", "requeue", 3)
    # Alice's slot is free again, but the chat she let go quiet is not given back to her: bob frees his
    # slot and gets it.
    resolve(server, a, BOB)
    given = [bob.wait_for("assigned", timeout=30) for _ in range(3)]  # q to alice, a to bob, q to bob
    assert [(e["handoff"]["id"], e["to"]) for e in given] == [(q, "alice"), (a, "bob"), (q, "bob")]
    note = [m for m in handoff(server, q)["transcript"] if m["role"] == "requeue"]
    assert [(m["author"], m["after"]) for m in note] == [("alice", 3)]
    # The shopper never sees the note; carol, away, got nothing.
    history = httpx.get(server.url + f"/v1/chat/{quiet['session_id']}/messages").json()["messages"]
    assert "requeue" not in {m["role"] for m in history}
    assert agents(server)["carol"] == ("away", 0)
    # Alice's console goes (its stream closes without a word): after the timeout she counts as away.
    alice.close()
    gone = time.monotonic() + 30
    while agents(server)["alice"][0] != "away":
        assert time.monotonic() < gone, "alice still counts as online with her console gone"
        time.sleep(0.5)
    assert agents(server)["bob"][0] == "online"  # his stream still beats
    bob.close()
