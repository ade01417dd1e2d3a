"""What the chat widget and the agent console read at start, and the pages that serve them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.conftest import AGENT_TOKEN
from tests.conftest import CATALOGUE, ROOT

ALICE = {"Authorization": f"Bearer {AGENT_TOKEN}"}


def test_widget_config_is_public_and_comes_from_the_shop(client: TestClient) -> None:
    r = client.get("/v1/widget")
    assert r.status_code == 200
    body = r.json()
    assert body["shop_name"] == "小鲸鱼服饰旗舰店"
    assert body["assistant_name"] == "小鲸"
    assert body["greeting"].strip()
    assert [q["label"] for q in body["quick_replies"]] == ["尺码", "发货", "付款", "退换货"]
    assert all(q["message"].strip() for q in body["quick_replies"])
    assert body["handoff_message"] == "转人工"


def test_every_word_the_widget_shows_is_one_of_the_shops(client: TestClient) -> None:
    source = (ROOT / "api" / "static" / "kefu-widget.js").read_text(encoding="utf-8")
    used = set(re.findall(r'\bT\("(\w+)"(?=[,)])', source))
    # Keys chosen at run time: the two votes under an answer, the five scores of a rating.
    assert '[[true, "helpful"], [false, "unhelpful"]]' in source and 'T("rate_" + n)' in source
    used |= {"helpful", "unhelpful"} | {f"rate_{n}" for n in range(1, 6)}
    texts = client.get("/v1/widget").json()["texts"]
    assert len(used) > 30 and not [k for k in sorted(used) if not str(texts.get(k, "")).strip()]


def test_quick_replies_are_answered_by_their_family(client: TestClient) -> None:
    for q in client.get("/v1/widget").json()["quick_replies"]:
        reply = client.post("/v1/chat", json={"message": q["message"]}).json()
        assert reply["route"] == "faq", q
        assert (reply["intent"] or "").split(".")[0] == q["family"], (q, reply["intent"])


def test_catalogue_needs_an_agent_token(client: TestClient) -> None:
    assert client.get("/v1/catalogue").status_code == 401
    assert client.get("/v1/catalogue", headers={"Authorization": "Bearer not-a-valid-token"}).status_code == 403


def test_catalogue_lists_every_id_with_a_title(client: TestClient) -> None:
    r = client.get("/v1/catalogue", headers=ALICE)
    assert r.status_code == 200
    body = r.json()
    ids = [e["id"] for e in body["data"]]
    assert set(CATALOGUE) <= set(ids) and body["count"] == len(ids)
    assert all(e["title"] and e["family"] == e["id"].split(".")[0] for e in body["data"])
    # A token in the URL is not a credential: URLs end up in logs and histories.
    assert client.get("/v1/catalogue", params={"token": AGENT_TOKEN}).status_code == 401


def test_pages_and_static_files_are_served_under_the_csp(client: TestClient) -> None:
    for path, kind in [("/", "text/html"), ("/agent", "text/html"), ("/docs", "text/html"),
                       ("/static/docs.js", "javascript"), ("/docs-assets/swagger-ui-bundle.js", "javascript"),
                       ("/docs-assets/swagger-ui.css", "text/css"), ("/static/kefu-widget.js", "javascript"),
                       ("/static/kefu-widget.css", "text/css"), ("/static/agent.js", "javascript"),
                       ("/static/agent.css", "text/css")]:
        r = client.get(path)
        assert r.status_code == 200, path
        assert kind in r.headers["content-type"], path
        assert "default-src 'self'" in r.headers["content-security-policy"]
    shop = client.get("/").text
    assert "小鲸鱼服饰旗舰店" in shop and '<script src="/static/kefu-widget.js"' in shop
    for page in (shop, client.get("/agent").text, client.get("/docs").text):  # no inline scripts: the CSP blocks them
        assert "<script>" not in page and "onclick=" not in page and "style=" not in page
