"""The deployment's Redis (docs/deploy.md, "Redis"): TLS with a private CA, the ACL file
deploy/broker_acl.py renders from the env files, and the processes that use it: a
controller-side worker, Django's cache for the sign-in throttles, and an agent installed
without the web stack."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from ciaoweb import taskrouting as names
from ciaoweb.core import signing
from ciaoweb.core.credentials import Credential

from .conftest import (
    DEPLOY,
    INSTALL_BIN,
    REPO,
    base_env,
    broker_acl,
    outside_the_base_install,
    read_example,
    run_python,
    unit,
    without,
)

pytestmark = pytest.mark.timeout(120)


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def _as(url: str, credentials: str) -> str:
    """The URL with other credentials ("" for none)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}" if credentials else host))


def test_each_user_of_the_env_files_gets_in_over_verified_tls_and_nobody_else(tls_broker):
    for role, variable in (("web", "REDIS_URL"), ("controller", "REDIS_URL")):
        assert _client(tls_broker.url(role, variable)).ping()
    assert _client(tls_broker.url("ciaoweb", "CIAO_CACHE_URL")).ping()
    web = tls_broker.url("web")
    with pytest.raises((AuthenticationError, ResponseError), match="NOAUTH|Authentication"):
        _client(_as(web, "")).ping()
    with pytest.raises(AuthenticationError):
        _client(_as(web, "web:not-its-password")).ping()
    # Without the CA the server's certificate is not trusted: the TLS is verified.
    unverified = web.split("&ssl_ca_certs=")[0]
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        _client(unverified).ping()


def test_the_example_env_files_placeholders_are_refused():
    examples = [DEPLOY / f"{role}.env.example" for role in ("web", "controller", "ciaoweb")]
    with pytest.raises(broker_acl.AclError, match="the example's"):
        broker_acl.users_file(examples)


def test_the_cache_user_can_do_what_djangos_cache_does_on_its_keys_only(tls_broker):
    """The sign-in throttles of every API process count in CIAO_CACHE_URL (user `cache`),
    with the production settings' key prefix."""
    from django.core.cache.backends.redis import RedisCache

    url = tls_broker.url("ciaoweb", "CIAO_CACHE_URL")
    prefix = broker_acl.CACHE_KEYS.removesuffix(":*")
    cache = RedisCache(url, {"KEY_PREFIX": prefix})
    assert cache.add("a", [1.0], 60)
    assert not cache.add("a", [2.0], 60)
    assert cache.get("a") == [1.0]
    cache.set("a", [1.0, 2.0], 60)  # what a throttle does with its history
    cache.set("forever", 1, None)
    assert cache.touch("a", 30) and cache.touch("a", None)  # EXPIRE, PERSIST
    assert cache.incr("forever") == 2
    cache.set_many({"b": 1, "c": 2}, 60)
    assert cache.get_many(["a", "b", "c"]) == {"a": [1.0, 2.0], "b": 1, "c": 2}
    assert cache.has_key("b")
    cache.delete_many(["b", "c"])
    assert cache.delete("a") and cache.get("a") is None
    with pytest.raises(NoPermissionError):
        cache.clear()  # FLUSHDB: never on a shared Redis
    with pytest.raises(NoPermissionError):
        RedisCache(url, {"KEY_PREFIX": "other"}).set("a", 1, 60)
    with pytest.raises(NoPermissionError):
        _client(url).lpush(names.CONTROLLER_QUEUE, "x")


def test_a_controller_worker_consumes_over_tls_with_a_private_ca(tls_broker, tmp_path):
    """The worker's broker watch (ciaoweb.core.broker_watch) opens a connection of its own:
    with the CA only in the URL's ssl_ca_certs it must still verify the server."""
    from tests.reliability.watch_app import make_app

    log = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "tests.reliability.watch_app", "worker"]
    argv += ["-Q", names.CONTROLLER_QUEUE, "-c", "1", "--loglevel", "INFO"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    env = base_env(CIAO_WATCH_BROKER=tls_broker.url("controller"))
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    marker = tmp_path / "done"
    try:
        make_app(tls_broker.url("web")).send_task("watch.mark", args=[str(marker)])
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert worker.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert "CERTIFICATE_VERIFY_FAILED" not in log.read_text()


AGENT_REPORTS = """
import json, os, sys
from ciaoweb import taskrouting as names
from ciaoweb.agent.__main__ import parse_args

config = parse_args(json.loads(sys.argv[1]))
os.environ["CIAO_AGENT_CONFIG"] = config.to_env()  # as main() does for its worker
from ciaoweb.agent.tasks import app, report

node_tasks = [names.ENSURE_INSTANCE, names.RELEASE_INSTANCE, names.ENSURE_DHCP_SERVER,
              names.REMOVE_DHCP_SERVER, names.RECONCILE]
report(names.REGISTER_INVENTORY, node=config.node, inventory={"pfs": []}, owners=[])
print(json.dumps({"node": config.node, "driver": config.driver,
                  "missing": [t for t in node_tasks if t not in app.tasks]}))
"""


def _agent_argv(tls_broker, tmp_path: Path) -> list[str]:
    """The agent unit's command line, its files the examples pointed at this broker."""
    import yaml

    config = yaml.safe_load((DEPLOY / "agent.example.yaml").read_text())
    config.update(broker_url=tls_broker.agent_url(), credential_file=str(tls_broker.credential))
    config_file = tmp_path / "agent.yaml"
    config_file.write_text(yaml.safe_dump(config))
    agent = unit("ciao-agent.service")
    argv = agent.argv(agent.get("ExecStart")[0])
    assert argv[0] == INSTALL_BIN + "ciao-agent"
    paths = {"/etc/ciao-agent/agent.yaml": str(config_file), "/var/lib/ciao-agent": str(tmp_path)}
    return [paths.get(word, word) for word in argv[1:]]


def test_an_agent_without_the_web_stack_reports_signed_through_its_broker_user(
    tls_broker, tmp_path
):
    """The agent's own Celery app, configured by the unit's command line and the example
    agent.yaml, with nothing but the base install importable: its report reaches the
    controller's queue as its ACL user, signed with its host's key."""
    controller = _client(tls_broker.url("controller"))
    while controller.rpop(names.CONTROLLER_QUEUE) is not None:  # the controller may not DEL
        pass
    script = without(outside_the_base_install()) + AGENT_REPORTS
    done = run_python(script, base_env(), json.dumps(_agent_argv(tls_broker, tmp_path)))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "node": read_example("agent.env.example")["CIAO_NODE"],
        "driver": "sriov",
        "missing": [],
    }
    popped = controller.brpop(names.CONTROLLER_QUEUE, timeout=10)
    assert popped is not None, "nothing reached the controller queue"
    message = json.loads(popped[1])
    body = message["body"]
    if message["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body).decode()
    credential = Credential.read(tls_broker.credential)
    signer = signing.Signer(
        signing.CONTROLLER,
        lambda _: b"",
        lambda sender: credential.signing_key if sender == credential.node else None,
        inject_sender=True,
    )
    task = signer.decode(body)
    assert task["task"] == names.REGISTER_INVENTORY
    assert task["kwargs"]["sender"] == task["kwargs"]["node"] == credential.node


def test_an_agent_beats_its_own_liveness_key_only_and_the_controller_reads_it(tls_broker):
    """Heartbeats are keys in the broker (ciaoweb.core.liveness): an agent's broker user
    may SET its own and nothing else there; the controller's may only read them."""
    from ciaoweb.agent.app import with_user
    from ciaoweb.core import liveness

    credential = Credential.read(tls_broker.credential)
    agent = liveness.redis_client(
        with_user(tls_broker.agent_url(), credential.broker_user, credential.broker_password)
    )
    controller = liveness.redis_client(tls_broker.url("controller"))
    liveness.beat(agent, credential.node, ttl=30)
    ages = liveness.beat_ages(controller, [credential.node, "other-node"])
    assert set(ages) == {credential.node} and 0 <= ages[credential.node] < 30
    with pytest.raises(NoPermissionError):
        liveness.beat(agent, "other-node", ttl=30)  # another host's liveness: refused
    with pytest.raises(NoPermissionError):
        agent.get(liveness.alive_key(credential.node))  # write-only
    with pytest.raises(NoPermissionError):
        liveness.beat(controller, credential.node, ttl=30)  # the controller only reads
