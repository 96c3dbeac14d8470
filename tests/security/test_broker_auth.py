"""Issue 14, the broker: the cluster's own Redis with a user per process, each allowed
only what it needs (ciaoweb.core.broker_acl), remote control off, dnsmasq not root.

Against the shared live cluster (real Redis, real workers): a client without
credentials is refused everything; an agent can read no queue but its own and can write
no other node's; the web process can read no node queue; Pub/Sub is the websocket
layer's channels (`asgi*`) alone, for the web and controller users only; nobody reaches
keyspace-wide or administrative commands; `celery inspect`/`control` get no answer from
any worker, even with full broker rights; the cluster's dnsmasq servers run as
ciao-dnsmasq; and while it served a launch and a websocket, no process of the cluster
was ever refused by the broker (the rules are not only tight but enough).
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.retry import Retry

from ciaoweb.agent.dhcp.server import DNSMASQ_USER
from ciaoweb.core.broker_acl import ADMIN_USER, CONTROLLER_USER, WEB_USER
from ciaoweb.core.credentials import agent_broker_user
from tests.worlds import LiveWorld

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
NODE, OTHER = "node1", "node2"


def _connect(cluster, user: str | None = None, password: str | None = None) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=cluster.redis.port,
        username=user,
        password=password,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),  # a refusal is the answer, not a reason to retry
    )


def _as(cluster, user: str) -> redis.Redis:
    return _connect(cluster, user, cluster.redis.password(user))


def _refused(client: redis.Redis, *command: str, error: type = NoPermissionError) -> None:
    """The command is refused with `error` (NOPERM by default), so it did nothing."""
    try:
        client.execute_command(*command)
    except error:
        return
    except redis.RedisError as exc:
        pytest.fail(f"{command}: {exc!r}, not {error.__name__}")
    pytest.fail(f"{command} was allowed")


def _dryrun(cluster, user: str, *command: str) -> bool:
    """Would the ACL let `user` run `command`? (ACL DRYRUN: checked, never executed)."""
    admin = cluster.redis.admin()
    try:
        answer = admin.execute_command("ACL", "DRYRUN", user, *command)
    finally:
        admin.close()
    return answer in (b"OK", "OK")


def _dryrun_refused(cluster, user: str, *command: str) -> None:
    assert not _dryrun(cluster, user, *command), f"{user} may run {command}"


@pytest.fixture(scope="module")
def broker(cluster):
    if cluster.redis is None:
        pytest.fail("the shared cluster must run its own Redis")
    return cluster


# The Channels layer's channel of the admins' group (channels_redis.pubsub).
ADMINS_CHANNEL = "asgi__group__ciao.admins"
# Commands nobody but the launcher may run, whatever the keys (tried for real).
FORBIDDEN_FOR_ALL = [
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("CONFIG", "GET", "*"),
    ("ACL", "LIST"),
    ("SELECT", "1"),
    ("PUBLISH", "/0.celery.pidbox", "x"),
    ("SUBSCRIBE", "/0.celeryev/worker.heartbeat"),
    ("PSUBSCRIBE", "*"),
    ("CLIENT", "LIST"),
    ("INFO",),
]
# ... and those only asked of the ACL (were the rules wrong, trying them would end the
# shared cluster's broker or its data).
DESTRUCTIVE = [("FLUSHALL",), ("FLUSHDB",), ("SHUTDOWN",), ("DEBUG", "SLEEP", "0"), ("MONITOR",)]


def test_the_cluster_processes_are_never_refused_while_they_work(broker):
    """A launch (DHCP server, VF, lease), a websocket listening, a delete: the broker's
    ACL LOG has no entry, so no process of the cluster needed more than it has. Checked
    first, before the tests below add refusals of their own."""
    from tests.e2e.test_websocket import Listener

    world = LiveWorld(broker)
    listener = Listener(broker, broker.admin_token)
    try:
        tenant = world.tenant("brokeracl", member=False)
        network = world.network(tenant, "acl", "10.97.0.0/24", by_admin=True)
        instance = world.instance(tenant, "acl1", "container", [network])
        world.running(instance["id"])
        broker.wait_for(
            lambda: any(m["type"] == "instance.updated" for _, m in listener.messages),
            timeout=30,
            what="a websocket message",
        )
        _check_dnsmasq_unprivileged(broker)
        world.delete_instance(instance["id"])
    finally:
        listener.close()
        world.cleanup()
    admin = broker.redis.admin()
    try:
        entries = admin.execute_command("ACL", "LOG")
    finally:
        admin.close()
    assert entries == [], f"the broker refused a process of the cluster: {entries}"


def _check_dnsmasq_unprivileged(cluster) -> None:
    pid_files = sorted(Path(cluster.sim.state_dir).glob("agents/*/dhcp-*/dnsmasq.pid"))
    pids = [int(p.read_text()) for p in pid_files if p.read_text().strip()]
    assert pids, "no managed dnsmasq runs"
    uid = pwd.getpwnam(DNSMASQ_USER).pw_uid
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        ids = {line.split(":")[0]: line.split()[1:] for line in status if ":" in line}
        assert set(map(int, ids["Uid"])) == {uid}, f"dnsmasq {pid}: Uid {ids['Uid']}"
        assert set(map(int, ids["Gid"])) == {pwd.getpwnam(DNSMASQ_USER).pw_gid}
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        hook = next(a for a in cmdline if a.startswith(b"--dhcp-script=")).split(b"=", 1)[1]
        st = os.stat(hook)
        assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755, hook
        assert stat.S_IMODE(os.stat(os.path.dirname(hook)).st_mode) == 0o755


def test_a_client_without_credentials_is_refused_everything(broker):
    anonymous = _connect(broker)
    for command in [
        ("PING",),
        ("LLEN", "controller"),
        ("LRANGE", f"node.{NODE}", "0", "-1"),
        ("LPUSH", "controller", "x"),
        ("HGETALL", "unacked"),
        ("KEYS", "*"),
        ("PUBLISH", "/0.celery.pidbox", "x"),
        ("SELECT", "1"),
    ]:
        _refused(anonymous, *command, error=AuthenticationError)
    # The default user is off, and a made-up or another user's password does not work.
    for user, password in [
        ("default", ""),
        ("default", "x"),
        (WEB_USER, "wrong"),
        (agent_broker_user(NODE), broker.redis.password(agent_broker_user(OTHER))),
    ]:
        with pytest.raises(AuthenticationError):
            _connect(broker, user, password).ping()


def test_an_agent_touches_its_own_queue_only(broker):
    me = agent_broker_user(NODE)
    agent = _as(broker, me)
    assert agent.ping()
    assert isinstance(agent.llen(f"node.{NODE}"), int)
    # Reports go to the controller's queue: LPUSH there, and nothing else on it.
    assert _dryrun(broker, me, "LPUSH", "controller", "x")
    for command in [
        ("LRANGE", "controller", "0", "-1"),
        ("LLEN", "controller"),
        ("RPOP", "controller"),
        ("BRPOP", "controller", "1"),
        ("LINDEX", "controller", "0"),
        ("DEL", "controller"),
        ("SET", "controller", "x"),  # a key of another type would block every report
        ("RENAME", "controller", "x"),
        ("EXPIRE", "controller", "1"),
        ("LTRIM", "controller", "1", "0"),
        ("SADD", "_kombu.binding.controller", "x"),
        # The liveness check's queue: an agent could flood it or forge a tick.
        ("LPUSH", "controller.liveness", "x"),
        ("BRPOP", "controller.liveness", "1"),
        # Another node's queue, its binding and its unacked specs; the controller's.
        ("LRANGE", f"node.{OTHER}", "0", "-1"),
        ("BRPOP", f"node.{OTHER}", "1"),
        ("LPUSH", f"node.{OTHER}", "x"),
        ("LPUSH", f"node.{NODE}0", "x"),  # node.node10 is not node.node1
        ("SADD", f"_kombu.binding.node.{OTHER}", "x"),
        ("HGETALL", f"unacked.node.{OTHER}"),
        ("ZRANGE", f"unacked_index.node.{OTHER}", "0", "-1"),
        ("HGETALL", "unacked"),
        # The Channels layer (websocket traffic of every tenant): no listening, no forging.
        ("SUBSCRIBE", ADMINS_CHANNEL),
        ("PUBLISH", ADMINS_CHANNEL, "x"),
        # A script runs with the caller's rights, key by key.
        ("EVAL", "return redis.call('lrange', 'controller', 0, -1)", "0"),
        *FORBIDDEN_FOR_ALL,
    ]:
        _refused(agent, *command)
    for command in DESTRUCTIVE:
        _dryrun_refused(broker, me, *command)


def test_the_web_process_reads_no_node_queue(broker):
    web = _as(broker, WEB_USER)
    assert _dryrun(broker, WEB_USER, "LPUSH", "controller", "x")
    assert _dryrun(broker, WEB_USER, "SUBSCRIBE", ADMINS_CHANNEL)
    assert _dryrun(broker, WEB_USER, "PUBLISH", ADMINS_CHANNEL, "x")
    for command in [
        ("LRANGE", f"node.{NODE}", "0", "-1"),
        ("LLEN", f"node.{NODE}"),
        ("BRPOP", f"node.{NODE}", "1"),
        ("LPUSH", f"node.{NODE}", "x"),  # node tasks come from the controller alone
        ("LRANGE", "controller", "0", "-1"),
        ("DEL", "controller"),
        ("LPUSH", "controller.liveness", "x"),  # beat alone ticks the liveness check
        ("HGETALL", "unacked"),
        ("HGETALL", f"unacked.node.{NODE}"),
        *FORBIDDEN_FOR_ALL,
    ]:
        _refused(web, *command)
    for command in DESTRUCTIVE:
        _dryrun_refused(broker, WEB_USER, *command)


def test_the_controller_has_no_administration_and_only_publishes_websocket_pushes(broker):
    controller = _as(broker, CONTROLLER_USER)
    assert _dryrun(broker, CONTROLLER_USER, "PUBLISH", ADMINS_CHANNEL, "x")
    _dryrun_refused(broker, CONTROLLER_USER, "SUBSCRIBE", ADMINS_CHANNEL)
    assert _dryrun(broker, CONTROLLER_USER, "LPUSH", f"node.{NODE}", "x")
    assert _dryrun(broker, CONTROLLER_USER, "BRPOP", "controller", "1")
    assert _dryrun(broker, CONTROLLER_USER, "BRPOP", "controller.liveness", "1")
    assert _dryrun(broker, CONTROLLER_USER, "LPUSH", "controller.liveness", "x")
    for command in [
        ("HGETALL", f"unacked.node.{NODE}"),  # an agent's unacked specs are its own
        ("DEL", f"node.{NODE}"),
        *FORBIDDEN_FOR_ALL,
    ]:
        _refused(controller, *command)
    for command in DESTRUCTIVE:
        _dryrun_refused(broker, CONTROLLER_USER, *command)


def _celery(broker, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**broker.env(), "CELERY_BROKER_URL": url, "REDIS_URL": url}
    env["CIAO_CONTROL_KEY"] = "not-the-cluster's"
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "ciaoweb.celery", *args, "--timeout", "3"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _no_reply(done: subprocess.CompletedProcess) -> None:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "pong" not in output and "-> " not in done.stdout, output


@pytest.mark.parametrize("user", [None, "agent", CONTROLLER_USER])
def test_celery_inspect_from_outside_gets_nothing(broker, user):
    """Without credentials, as an agent, even as the controller: refused (no Pub/Sub)."""
    if user is None:
        url = broker.broker_url
    else:
        url = broker.redis.url(agent_broker_user(NODE) if user == "agent" else user)
    _no_reply(_celery(broker, url, "inspect", "ping"))


def test_no_worker_answers_remote_control_even_to_the_broker_admin(broker):
    """Remote control is off in every worker: the launcher's all-powerful user may
    publish on the pidbox channel, and nobody listens."""
    url = broker.redis.url(ADMIN_USER)
    for args in (("inspect", "ping"), ("inspect", "active"), ("control", "enable_events")):
        _no_reply(_celery(broker, url, *args))
    broker.check_alive()  # ... and every worker still runs


def test_no_password_leaves_the_launcher_but_to_whom_it_belongs(broker, tmp_path):
    """Agents get their credential file (0600), not a password on argv or in their
    environment; the web and controller processes get theirs in their environment only;
    the ACL file (0600, in a 0700 dir) holds hashes; var/demo.json names the broker
    without credentials."""
    passwords = [broker.redis.password(u) for u in (WEB_USER, CONTROLLER_USER, ADMIN_USER)]
    passwords += list(broker.redis.agents.values())
    acl = broker.redis.acl_path
    assert stat.S_IMODE(acl.stat().st_mode) == 0o600
    assert stat.S_IMODE(acl.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(broker.redis.conf_path.stat().st_mode) == 0o600
    text = acl.read_text()
    assert not any(p in text for p in passwords)
    for host, process in broker.agents.items():
        pid = process.popen.pid
        seen = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()
        assert not any(p.encode() in seen for p in passwords), host
        assert not any(s.encode() in seen for s in broker.secrets.values()), host
        credential = broker.credential_path(host)
        assert stat.S_IMODE(credential.stat().st_mode) == 0o600
        assert str(credential).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    server_env = Path(f"/proc/{broker.server.popen.pid}/environ").read_bytes()
    assert broker.redis.password(WEB_USER).encode() in server_env
    assert broker.redis.password(CONTROLLER_USER).encode() not in server_env
    info = tmp_path / "demo.json"
    broker.write_info(info)
    written = json.loads(info.read_text())
    assert written["broker"] == f"redis://127.0.0.1:{broker.redis.port}/0"
    assert not any(p in info.read_text() for p in passwords)
