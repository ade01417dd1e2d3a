"""The outside attack of issue 12 (tests/attack.py), replayed against a real server process on
SQLite and on PostgreSQL: every case must hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import attack
from tests.api.conftest import AGENT_TOKEN, OTHER_TOKEN
from tests.server import Server, drop_pg_schema, free_port, fresh_pg_schema, pg_available

pytestmark = pytest.mark.slow
REQUEST_TIMEOUT = 2


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, models_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[attack.Target]:
    tmp = tmp_path_factory.mktemp(f"attack-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'kefu.db'}"
    else:
        if not pg_available():
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (.ci/run starts it)")
        url = fresh_pg_schema()
    hook = free_port()
    env = {"KEFU_MODELS_DIR": str(models_dir), "KEFU_DATABASE_URL": url,
           "KEFU_AGENT_TOKENS": f"alice:{AGENT_TOKEN},bob:{OTHER_TOKEN}",
           "KEFU_RATE_LIMIT_IP": "40", "KEFU_RATE_LIMIT_SESSION": "50", "KEFU_RATE_LIMIT_WINDOW": "3600",
           "KEFU_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT), "KEFU_PUBLIC_URL": "https://kefu.shop.example",
           "KEFU_WEBHOOK_URL": f"http://127.0.0.1:{hook}/hook", "KEFU_WEBHOOK_SECRET": "attack-webhook-secret"}
    srv = Server(env, log=tmp / "server.log", log_level="info").start()
    yield attack.Target(srv.url, [AGENT_TOKEN, OTHER_TOKEN], log=str(tmp / "server.log"), webhook_port=hook,
                        request_timeout=REQUEST_TIMEOUT)
    srv.stop()
    if request.param == "postgres":
        drop_pg_schema(url)


@pytest.mark.parametrize("name", list(attack.CASES))
def test_attack_case_holds(target: attack.Target, name: str) -> None:
    assert attack.run(target, [name]) == {name: "held"}
