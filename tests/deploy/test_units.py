"""The systemd units under deploy/systemd: they parse, every command names a program the
install has, they run the local cluster's own commands, and each process gets the env
files of its broker user and signer."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from ciaoweb.core import signing
from ciaoweb.core.broker_acl import CONTROLLER_USER, WEB_USER
from ciaoweb.localcluster.cluster import ClusterConfig, LocalCluster
from ciaoweb.taskrouting import CONTROLLER_QUEUE, LIVENESS_QUEUE

from .conftest import INSTALL_BIN, UNITS, VENV_BIN, Unit, example_of, unit, units

SERVICES = [u for u in units() if u.name.endswith(".service")]
CONTROLLER_UNITS = {
    "ciaoweb-api@.service": (WEB_USER, signing.WEB),
    "ciaoweb-worker.service": (CONTROLLER_USER, signing.CONTROLLER),
    "ciaoweb-liveness.service": (CONTROLLER_USER, signing.CONTROLLER),
    "ciaoweb-beat.service": (CONTROLLER_USER, signing.CONTROLLER),
    "ciaoweb-migrate.service": (CONTROLLER_USER, signing.CONTROLLER),
}


def test_the_expected_units_are_there():
    names = {u.name for u in units()}
    assert names == {*CONTROLLER_UNITS, "ciao-agent.service", "ciaoweb.target"}


@pytest.mark.parametrize("service", SERVICES, ids=lambda u: u.name)
def test_each_service_parses_and_runs_a_program_the_install_has(service: Unit):
    assert {"Unit", "Service"} <= set(service.sections)
    commands = service.get("ExecStart")
    assert commands, "no ExecStart"
    assert len(commands) == 1 or service.get("Type") == ["oneshot"]
    for command in commands:
        argv = service.argv(command)
        program = argv[0]
        assert program.startswith(INSTALL_BIN), f"{program} is not in the deployment's venv"
        name = program.removeprefix(INSTALL_BIN)
        assert (VENV_BIN / name).is_file(), f"{name} is not installed (.venv/bin/{name})"
        if argv[1:2] == ["-m"]:
            assert importlib.util.find_spec(argv[2]) is not None, f"no module {argv[2]}"
        for flag in ("-A", "--app"):  # celery's app module
            if flag in argv:
                assert importlib.util.find_spec(argv[argv.index(flag) + 1]) is not None
        for word in argv:  # daphne's application, module:attribute
            if word.startswith("ciaoweb.") and ":" in word:
                assert importlib.util.find_spec(word.partition(":")[0]) is not None
    # Everything it reads is a file an operator copies from deploy/.
    for path in service.get("EnvironmentFile"):
        assert example_of(path).is_file(), f"{path}: no {example_of(path).name} in deploy/"
    assert service.get("WantedBy", "Install") or service.get("Type") == ["oneshot"]


@pytest.mark.parametrize("name", CONTROLLER_UNITS)
def test_each_controller_process_gets_its_own_broker_user_and_signer(name):
    """The API talks to Redis as `web` and signs as web; the worker, beat and the one-time
    commands as `controller` (docs/security.md). Both read the shared ciaoweb.env, which
    names no broker user."""
    from urllib.parse import urlsplit

    from .conftest import read_example

    service = unit(name)
    user, signer = CONTROLLER_UNITS[name]
    env = service.env()
    assert env["DJANGO_SETTINGS_MODULE"] == "ciaoweb.settings_production"
    assert urlsplit(env["REDIS_URL"]).username == user
    assert env["CIAO_SIGNER_IDENTITY"] == signer
    assert "REDIS_URL" not in read_example("ciaoweb.env.example")
    assert service.get("User") == ["ciaoweb"]


def _options(argv: list[str]) -> dict[str, str | None]:
    """Celery's options as {flag: value or None}."""
    options: dict[str, str | None] = {}
    for index, word in enumerate(argv):
        if word.startswith("-"):
            following = argv[index + 1] if index + 1 < len(argv) else "-"
            options[word] = None if following.startswith("-") else following
    return options


def _cluster_argv(process: str) -> list[str]:
    cluster = LocalCluster(ClusterConfig(name="deploy-units"), progress=lambda _: None)
    return getattr(cluster, f"_{process}_argv")()


def test_the_worker_runs_the_local_clusters_command_without_beat():
    ours = unit("ciaoweb-worker.service")
    argv = ours.argv(ours.get("ExecStart")[0])
    cluster = _cluster_argv("controller")
    command = ["-m", "celery", "-A", "ciaoweb.celery", "worker"]
    assert argv[1:6] == cluster[1:6] == command
    wanted = _options(cluster[6:])
    # Beat is a unit of its own here; the pool size and the name are each host's.
    for flag in ("-B", "-s", "-c", "--hostname"):
        wanted.pop(flag)
    got = _options(argv[6:])
    # The liveness queue too: without ciaoweb-liveness the check still runs, late.
    assert got["-Q"] == f"{CONTROLLER_QUEUE},{LIVENESS_QUEUE}"
    assert {k: v for k, v in got.items() if k not in ("-c", "--hostname")} == wanted
    assert got["--hostname"] == "controller@ctl1"


def test_the_liveness_worker_runs_the_local_clusters_command_on_its_queue_alone():
    ours = unit("ciaoweb-liveness.service")
    argv = ours.argv(ours.get("ExecStart")[0])
    cluster = _cluster_argv("liveness")
    assert argv[1:6] == cluster[1:6]
    got, wanted = _options(argv[6:]), _options(cluster[6:])
    assert got["-Q"] == wanted["-Q"] == LIVENESS_QUEUE
    assert got["-P"] == "solo"
    assert got.pop("--hostname") == "liveness@ctl1"
    wanted.pop("--hostname")
    assert got == wanted


def test_one_beat_on_the_controllers_app_with_its_schedule_in_its_state_dir():
    beats = [u for u in SERVICES if " beat" in " ".join(u.get("ExecStart"))]
    assert [u.name for u in beats] == ["ciaoweb-beat.service"]
    assert "@" not in beats[0].name  # not a template: one instance
    argv = beats[0].argv(beats[0].get("ExecStart")[0])
    assert argv[1:6] == ["-m", "celery", "-A", "ciaoweb.celery", "beat"]
    state = Path("/var/lib") / beats[0].get("StateDirectory")[0]
    assert Path(_options(argv)["-s"]).parent == state


def test_the_api_template_serves_the_asgi_app_on_its_instances_loopback_port():
    api = unit("ciaoweb-api@.service")
    argv = api.argv(api.get("ExecStart")[0], instance="8002")
    assert argv[1:] == [
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        "8002",
        "ciaoweb.asgi:application",
    ]
    # ... the ports the proxy example lists.
    proxy = (UNITS.parent / "nginx" / "ciaoweb.conf").read_text()
    assert "server 127.0.0.1:8001" in proxy and "server 127.0.0.1:8002" in proxy


def test_the_agent_unit_runs_the_console_script_of_ciaoweb_agent_as_root():
    agent = unit("ciao-agent.service")
    argv = agent.argv(agent.get("ExecStart")[0])
    assert argv[0] == INSTALL_BIN + "ciao-agent"
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert scripts["ciao-agent"].value == "ciaoweb.agent.__main__:main"
    assert agent.get("User") == ["root"]
    assert "CAP_NET_ADMIN" in agent.get("CapabilityBoundingSet")[0].split()
    # Its namespaces must be the host's: no mount namespace of its own.
    for key in ("PrivateTmp", "ProtectSystem", "ProtectHome", "PrivateMounts", "ReadOnlyPaths"):
        assert not agent.get(key), f"{key} would hide /run/netns from the host"
    state = Path("/var/lib") / agent.get("StateDirectory")[0]
    assert argv[argv.index("--state-dir") + 1] == str(state)
    assert argv[argv.index("--node") + 1] == agent.env()["CIAO_NODE"]
