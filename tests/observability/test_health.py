"""/healthz and /readyz: no authentication; readiness follows the database and the broker.

The broker is a private redis-server of this test (the local cluster's own, with its ACL
users: the web process' user may PING), never the machine's shared one on 6379.
"""

from __future__ import annotations

import os
import threading

import pytest
from django.test import Client

from ciaoweb.core.broker_acl import WEB_USER
from ciaoweb.localcluster.broker import OwnRedis
from ciaoweb.localcluster.processes import RUN_DIR_ENV
from ciaoweb.observability.health import OK, run_checks
from tests.prereqs import require


def test_healthz_answers_without_auth_or_database():
    # No `db` fixture: pytest-django refuses any query, so this proves none is made.
    reply = Client().get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}
    assert "no-cache" in reply["Cache-Control"]


def test_healthz_refuses_writes():
    assert Client().post("/healthz").status_code == 405


@pytest.fixture
def own_redis(tmp_path):
    require(("redis-server",), "the readiness test")
    env = {"PATH": os.environ.get("PATH", ""), RUN_DIR_ENV: str(tmp_path)}
    redis = OwnRedis(tmp_path, lambda: env).start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.mark.django_db
def test_readyz_follows_the_broker(own_redis, settings):
    settings.CELERY_BROKER_URL = own_redis.url(WEB_USER)
    client = Client()
    up = client.get("/readyz")
    assert up.status_code == 200, up.content
    assert up.json() == {"checks": {"database": "ok", "broker": "ok"}}

    own_redis.kill()
    down = client.get("/readyz")
    assert down.status_code == 503
    checks = down.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["broker"].startswith("ConnectionError"), checks
    assert own_redis.password(WEB_USER) not in checks["broker"]

    own_redis.start()  # the same port again
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_names_a_broker_that_refuses_us(own_redis, settings):
    settings.CELERY_BROKER_URL = own_redis.url(WEB_USER).replace(
        own_redis.password(WEB_USER), "wrong-password"
    )
    reply = Client().get("/readyz")
    assert reply.status_code == 503
    assert reply.json()["checks"]["broker"].startswith("AuthenticationError"), reply.json()


def test_a_hung_check_is_reported_as_timed_out_and_does_not_pile_up():
    release = threading.Event()
    calls = []

    def hangs(timeout: float) -> None:
        calls.append(timeout)
        release.wait(30)

    def fails(timeout: float) -> None:
        raise OSError("no route to host")

    checks = {"test-hang": hangs, "test-fail": fails, "test-ok": lambda timeout: None}
    try:
        first = run_checks(checks, timeout=0.2)
        assert first == {
            "test-hang": "timed out after 0.2 s",
            "test-fail": "OSError: no route to host",
            "test-ok": OK,
        }
        # Still stuck: the next probe's check waits behind it, is cancelled, never runs.
        assert run_checks({"test-hang": hangs}, timeout=0.2)["test-hang"].startswith("timed out")
    finally:
        release.set()
    assert calls == [0.2]
