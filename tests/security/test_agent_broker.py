"""Agents take tasks only from the broker they are configured with, only from their own
queue `node.<name>`, as their host's broker user, only signed messages (never pickle or
plain JSON: ciaoweb.core.signing), and only the agent's own tasks; the controller
routes every agent task to a node queue and refuses one without a node."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ciaoweb import taskrouting
from ciaoweb.agent.app import make_app
from ciaoweb.core.credentials import Credential
from ciaoweb.core.signing import SERIALIZER
from ciaoweb.taskrouting import route_task

REPO = Path(__file__).resolve().parents[2]


def test_the_agent_app_uses_exactly_the_broker_it_is_given(monkeypatch):
    # Celery would let these environment variables win over the configured broker.
    for name in ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"):
        monkeypatch.setenv(name, "redis://evil.example:6379/0")
    app = make_app("redis://10.9.8.7:6390/5")
    assert app.conf.broker_url == "redis://10.9.8.7:6390/5"
    assert app.conf.broker_read_url == app.conf.broker_write_url == "redis://10.9.8.7:6390/5"
    assert app.connection_for_read().as_uri() == "redis://10.9.8.7:6390/5"
    assert app.conf.accept_content == [SERIALIZER] and app.conf.task_serializer == SERIALIZER
    assert route_task in app.conf.task_routes


def test_an_agent_talks_to_the_broker_as_its_own_user_with_its_own_unacked_keys():
    credential = Credential("node3", "s" * 43)
    app = make_app("redis://127.0.0.1:6390/0", credential)
    url = app.conf.broker_url
    assert url.startswith("redis://agent-node3:") and url.endswith("@127.0.0.1:6390/0")
    assert credential.broker_password in url
    options = app.conf.broker_transport_options
    assert options["unacked_key"].endswith("node.node3") and options["visibility_timeout"] == 120


def _run(code: str, env: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_started_agent_serves_its_configured_broker_and_node_queue_only(tmp_path):
    """`python -m ciaoweb.agent` with the Celery worker replaced by a recorder: the broker
    comes from --broker (not from REDIS_URL/CELERY_BROKER_URL of the environment), the worker
    consumes `node.<name>` alone, and only agent tasks are registered."""
    code = f"""
import json, celery
import ciaoweb.agent.background as background
background.start_background = lambda config, stop: None
seen = {{}}
def worker_main(self, argv):
    self.loader.import_default_modules()
    seen.update(broker=self.conf.broker_url, argv=argv, accept=list(self.conf.accept_content),
                tasks=sorted(t for t in self.tasks if not t.startswith("celery.")))
celery.Celery.worker_main = worker_main
from ciaoweb.agent.__main__ import main
from ciaoweb.core.credentials import Credential
Credential("node7", "x" * 43).write({str(tmp_path / "credential.json")!r})
main(["--node", "node7", "--broker", "redis://127.0.0.1:6399/9",
      "--credential-file", {str(tmp_path / "credential.json")!r},
      "--state-dir", {str(tmp_path)!r}])
print(json.dumps(seen))
"""
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": "redis://evil.example:6379/0",
        "CELERY_BROKER_URL": "redis://evil.example:6379/1",
        "CIAO_VAR_DIR": str(tmp_path),
    }
    seen = _run(code, env)
    assert seen["broker"].startswith("redis://agent-node7:")
    assert seen["broker"].endswith("@127.0.0.1:6399/9")
    argv = seen["argv"]
    assert argv[argv.index("--queues") + 1] == "node.node7"
    assert argv.count("--queues") == 1 and "-Q" not in argv
    assert seen["accept"] == [SERIALIZER]
    assert seen["tasks"] and all(t.startswith(taskrouting.AGENT_PREFIX) for t in seen["tasks"])


def test_the_agent_app_reads_its_broker_from_the_agent_config(tmp_path):
    config = {"node": "node8", "broker_url": "redis://127.0.0.1:6398/8", "state_dir": str(tmp_path)}
    env = {
        "PATH": "/usr/bin:/bin",
        "CIAO_AGENT_CONFIG": json.dumps(config),
        "REDIS_URL": "redis://evil.example:6379/0",
        "CELERY_BROKER_URL": "redis://evil.example:6379/1",
    }
    code = "import json; from ciaoweb.agent.app import app; print(json.dumps(app.conf.broker_url))"
    assert _run(code, env) == "redis://127.0.0.1:6398/8"


@pytest.mark.parametrize(
    "name",
    [
        taskrouting.ENSURE_INSTANCE,
        taskrouting.RELEASE_INSTANCE,
        taskrouting.ENSURE_DHCP_SERVER,
        taskrouting.REMOVE_DHCP_SERVER,
        taskrouting.RECONCILE,
    ],
)
def test_agent_tasks_go_to_their_nodes_queue_only(name):
    assert route_task(name, (), {"node": "node1", "spec": {}}, {}) == {"queue": "node.node1"}
    for kwargs in (None, {}, {"node": ""}, {"node": None}, {"spec": {"node": "node1"}}):
        with pytest.raises(ValueError, match="without a node"):
            route_task(name, ("node1",), kwargs, {})


def test_controller_tasks_go_to_the_controller_queue():
    for name in (
        taskrouting.INSTANCE_APPLIED,
        taskrouting.LEASE_EVENT,
        taskrouting.HEARTBEAT,
    ):
        assert route_task(name, (), {"node": "node1"}, {}) == {"queue": "controller"}
    # The liveness check has a queue of its own, which agents may not write to.
    check = route_task(taskrouting.CHECK_HEARTBEATS, (), {"node": "node1"}, {})
    assert check == {"queue": taskrouting.LIVENESS_QUEUE}


def test_the_controller_sends_node_tasks_through_the_router():
    from ciaoweb.celery import app
    from ciaoweb.orchestration import sender

    assert route_task in app.conf.task_routes
    assert app.conf.accept_content == [SERIALIZER]
    signature = sender.signature(taskrouting.ENSURE_INSTANCE, "node3", spec={})
    assert signature.kwargs["node"] == "node3"
    assert (
        app.amqp.router.route({}, signature.task, signature.args, signature.kwargs)["queue"].name
        == "node.node3"
    )


def test_an_agent_without_a_credential_does_not_start(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ciaoweb.agent", "--node", "node7", "--state-dir", str(tmp_path)],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "CIAO_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "enrol the host" in done.stderr
