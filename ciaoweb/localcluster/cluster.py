"""A whole ciaoweb cluster on this machine: what `make demo` runs and what the
end-to-end tests, browser tests and benchmarks drive.

Every process is real: daphne (REST API, dashboard, websockets), the controller's
Celery worker (with beat for heartbeat checks), one agent per host, Redis, the
database, dnsmasq. The hosts are the simulator's (`nodes="sim"`, the default) or QEMU
guests with emulated igb SR-IOV NICs whose agents drive the real kernel (`nodes="qemu"`,
ciaoweb.localcluster.qemu.nodes). Teardown runs in reverse order of start-up and leaves
no namespace, link, socket or process behind.

The broker is the cluster's own redis-server (ciaoweb.localcluster.broker) with an ACL
user per process: the web and controller processes get their URL with their password in
their environment, each agent its enrolment credential in a 0600 file; nothing else
carries a password (not argv, not var/demo.json).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ciaoweb.core import signing
from ciaoweb.core.broker_acl import CONTROLLER_USER, WEB_USER
from ciaoweb.core.credentials import Credential, broker_password
from ciaoweb.taskrouting import CONTROLLER_QUEUE, LIVENESS_QUEUE

from .broker import OwnRedis
from .processes import (
    RUN_DIR_ENV,
    ManagedProcess,
    clean_clusters,
    runs_dir,
    stop_agent_daemons,
    stop_all,
    stop_from_pid_files,
)

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
ADMIN_USERNAME = "admin"
# The broker user of a process -> the identity it signs its messages as.
SIGNER_OF = {WEB_USER: signing.WEB, CONTROLLER_USER: signing.CONTROLLER}
# LocalCluster.wait_for's polling: every 50 ms at first, backing off to every 250 ms.
POLL_FIRST, POLL_LAST = 0.05, 0.25


def demo_topology() -> dict[str, Any]:
    """3 compute hosts with 2 PFs each on two physnets, 8 VFs per PF, a network node,
    and an underlay DHCP server on physnet2 VLAN 300 for `ipam=underlay` networks."""

    def pfs() -> list[dict[str, Any]]:
        return [
            {"name": "pf0", "physnet": "physnet1", "sriov_totalvfs": 8},
            {"name": "pf1", "physnet": "physnet2", "sriov_totalvfs": 8},
        ]

    hosts = [{"name": f"node{i}", "pfs": pfs()} for i in (1, 2, 3)]
    hosts.append({"name": "netnode", "network_node": True, "pfs": pfs()})
    return {
        "physnets": ["physnet1", "physnet2"],
        "hosts": hosts,
        "underlays": [{"physnet": "physnet2", "vlan": 300, "cidr": "192.168.30.0/24"}],
    }


@dataclass
class ClusterConfig:
    name: str = "demo"
    # "sim": the simulator's hosts; "qemu": QEMU guests with igb NICs (topology: qemu_topology)
    nodes: str = "sim"
    port: int = 8000
    database_url: str = ""
    # Empty: the cluster runs its own Redis with ACL users (what everything uses). A URL:
    # an external Redis that already has the users of ciaoweb.core.broker_acl.
    redis_url: str = ""
    topology: dict[str, Any] = field(default_factory=demo_topology)
    heartbeat_interval: float = 1.0  # the product's defaults (ciaoweb.core.envconfig)
    heartbeat_timeout: float = 6.0
    # Agents re-register (and so reconcile) this often; fault tests shorten it.
    reconcile_interval: float = 60.0
    # The operations watchdog: a step silent this long is sent again (fault tests shorten it).
    operation_step_timeout: float = 30.0
    watchdog_interval: float = 5.0
    agent_concurrency: int = 2
    controller_concurrency: int = 2
    # daphne processes serving the API, dashboard and websockets on one listening socket
    # (`daphne --fd`: the kernel hands each connection to one of them).
    api_workers: int = 1
    # PostgreSQL connections each API process keeps and lends to requests (SQLite: none).
    # Many clusters share one PostgreSQL (100 connections) in the test suite.
    database_pool_size: int = 8
    # Sign-in throttling (CIAO_AUTH_THROTTLE...) as configured; off by default: the tests
    # and benchmarks sign in far more often than people do. The demo turns it on.
    sign_in_throttle: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return runs_dir() / self.name


class ClusterError(RuntimeError):
    pass


class LocalCluster:
    def __init__(self, config: ClusterConfig, progress: Callable[[str], None] = print) -> None:
        self.config = config
        self.progress = progress
        self.run_dir = config.run_dir
        self.url = f"http://127.0.0.1:{config.port}"
        self.admin_username = ADMIN_USERNAME
        self.admin_password = ""
        self.admin_token = ""
        self.sim = None
        self.qemu = None  # QemuNodes when config.nodes == "qemu"
        self.servers: list[ManagedProcess] = []
        self.controller: ManagedProcess | None = None
        self.liveness: ManagedProcess | None = None
        self.agents: dict[str, ManagedProcess] = {}
        self._api: httpx.Client | None = None
        # host -> enrolment secret (written to the agent's credential file)
        self.secrets: dict[str, str] = {}
        # Signs the web's and the controller's own tasks (ciaoweb.core.signing); only those
        # two processes get it.
        self.control_key = secrets.token_hex(32)
        self.redis: OwnRedis | None = None if config.redis_url else OwnRedis(self.run_dir, self.env)

    # --- broker ---------------------------------------------------------------------

    @property
    def broker_url(self) -> str:
        """The broker without credentials (var/demo.json's "broker", agents' --broker)."""
        if self.redis is not None:
            return self.redis.public_url
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.config.redis_url)
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))

    def broker_url_for(self, user: str) -> str:
        """`user`'s broker URL with its password (own Redis); the external URL as given."""
        return self.redis.url(user) if self.redis is not None else self.config.redis_url

    def restart_redis(self, kill: bool = True, down: float = 0.0) -> None:
        """Kill (SIGKILL, as a crash; else stop) the cluster's Redis, keep it down `down`
        seconds, start it again on the same port with the same ACL file. No persistence:
        every queued and unacked message is gone."""
        if self.redis is None:
            raise ClusterError("this cluster uses an external Redis")
        self.redis.restart(kill=kill, down=down)

    # --- environment ----------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("CIAO_AGENT", "DJANGO_SETTINGS", "CIAO_CONTROL_KEY", "CIAO_SIGNER")
            )
        }
        env.update(
            DJANGO_SETTINGS_MODULE="ciaoweb.settings",
            # No password here: only the web and controller processes get theirs
            # (_env_as); anything else that tries the broker is refused.
            REDIS_URL=self.broker_url,
            CELERY_BROKER_URL=self.broker_url,
            CIAO_HEARTBEAT_INTERVAL=str(self.config.heartbeat_interval),
            CIAO_HEARTBEAT_TIMEOUT=str(self.config.heartbeat_timeout),
            CIAO_OPERATION_STEP_TIMEOUT=str(self.config.operation_step_timeout),
            CIAO_WATCHDOG_INTERVAL=str(self.config.watchdog_interval),
            CIAO_DISPATCH="celery",
            PYTHONUNBUFFERED="1",
            **{RUN_DIR_ENV: str(self.run_dir)},
        )
        env.pop("CIAO_CHANNEL_LAYER", None)
        if not self.config.sign_in_throttle:
            env.setdefault("CIAO_AUTH_THROTTLE", "off")
            env.setdefault("CIAO_AUTH_ADDRESS_THROTTLE", "off")
        if self.config.database_url:
            env["DATABASE_URL"] = self.config.database_url
        env.update(self.config.extra_env)
        return env

    def _env_as(self, user: str) -> dict[str, str]:
        """The environment of a process that talks to Redis as `user` (web, controller):
        the broker and the Channels layer (settings.REDIS_URL) with its password, and the
        control key its own tasks are signed with."""
        url = self.broker_url_for(user)
        return {
            **self.env(),
            "REDIS_URL": url,
            "CELERY_BROKER_URL": url,
            "CIAO_CONTROL_KEY": self.control_key,
            # Who signs its messages (ciaoweb.core.signing).
            "CIAO_SIGNER_IDENTITY": SIGNER_OF[user],
        }

    def _agent_env(self) -> dict[str, str]:
        """An agent has no Django and no database (its reports go through the broker): no
        settings module (Celery's Django fix-up would set Django up in it and install the
        controller's signer), no database URL, no broker URL (it has --broker and its
        credential file)."""
        env = {
            k: v
            for k, v in self.env().items()
            if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
        }
        env["CIAO_HEARTBEAT_INTERVAL"] = str(self.config.heartbeat_interval)
        return env

    def _manage(self, *args: str, input_env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [PYTHON, str(REPO / "manage.py"), *args],
            env={**self.env(), **(input_env or {})},
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ClusterError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> LocalCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._clear_leftovers()
        started = time.monotonic()
        if self.config.nodes == "qemu":
            self._start_guests()
        else:
            from simulator import Simulator, Topology

            self.progress(f"[1/6] simulator {self.config.name}: building hosts, PFs and VFs")
            topology = Topology.from_dict(self.config.topology)
            self.sim = Simulator.up(topology, name=self.config.name)
        self.progress(f"      {len(self.hosts())} hosts up in {time.monotonic() - started:.1f}s")
        self.progress("[2/6] database: migrating")
        self._manage("migrate", "--noinput")
        self.progress("[3/6] admin account")
        self.admin_password = secrets.token_urlsafe(12)
        self._manage(
            "localcluster_admin",
            self.admin_username,
            input_env={"CIAO_ADMIN_PASSWORD": self.admin_password},
        )
        self._enroll_hosts()
        self._start_broker()
        self.progress(f"[4/6] controller: API server on {self.url} and its worker")
        self._start_servers()
        self.controller = self._spawn("controller", self._controller_argv(), user=CONTROLLER_USER)
        self.liveness = self._spawn("liveness", self._liveness_argv(), user=CONTROLLER_USER)
        self.progress("[5/6] node agents: " + ", ".join(self.hosts()))
        for host in self.hosts():
            self.start_agent(host)
        self.progress("[6/6] waiting for every host to register")
        self._wait_ready()

    def _start_servers(self) -> None:
        daphne = [PYTHON, "-m", "daphne"]
        app = "ciaoweb.asgi:application"
        pooled = {"CIAO_DATABASE_POOL_SIZE": str(self.config.database_pool_size)}
        if self.config.api_workers <= 1:
            argv = [*daphne, "-b", "127.0.0.1", "-p", str(self.config.port), app]
            self.servers = [self._spawn("server", argv, user=WEB_USER, extra_env=pooled)]
            return
        listening = socket.create_server(("127.0.0.1", self.config.port), backlog=1024)
        try:
            fd = listening.fileno()
            argv = [*daphne, "--fd", str(fd), app]
            self.servers = [
                self._spawn(f"server{n}", argv, user=WEB_USER, pass_fds=(fd,), extra_env=pooled)
                for n in range(self.config.api_workers)
            ]
        finally:
            listening.close()  # the servers hold it now

    @property
    def server(self) -> ManagedProcess | None:
        """The first API server (the only one unless `api_workers` > 1)."""
        return self.servers[0] if self.servers else None

    def _controller_argv(self) -> list[str]:
        return self._worker_argv(
            "controller",
            # It takes the liveness queue too: a check still runs, late, without the other.
            [f"{CONTROLLER_QUEUE},{LIVENESS_QUEUE}", "-c", str(self.config.controller_concurrency)],
            ["-B", "-s", str(self.run_dir / "beat-schedule")],
        )

    def _liveness_argv(self) -> list[str]:
        """The liveness check's own worker: one process (solo pool), never behind a burst."""
        return self._worker_argv("liveness", [LIVENESS_QUEUE, "-P", "solo"])

    def _worker_argv(self, name: str, queues: list[str], extra: tuple | list = ()) -> list[str]:
        return [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "ciaoweb.celery",
            "worker",
            "-Q",
            *queues,
            "--hostname",
            f"{name}@{self.config.name}",
            "--without-gossip",
            "--without-mingle",
            # Worker heartbeats are events (Pub/Sub): nobody listens, the ACL forbids them.
            "--without-heartbeat",
            *extra,
            "--loglevel",
            "INFO",
        ]

    def restart_controller(self, kill: bool = True) -> ManagedProcess:
        """Stop the controller's worker (SIGKILL by default, as a crash) and start it again."""
        if self.controller is not None:
            if kill:
                self.controller.kill()
            else:
                self.controller.stop()
        self.controller = self._spawn("controller", self._controller_argv(), user=CONTROLLER_USER)
        return self.controller

    def start_agent(self, host: str) -> ManagedProcess:
        # No password on any command line: the agent derives its broker password (and
        # its signing key) from the credential file.
        flags = [
            "--node",
            host,
            "--concurrency",
            str(self.config.agent_concurrency),
            "--heartbeat-interval",
            str(self.config.heartbeat_interval),
            "--reconcile-interval",
            str(self.config.reconcile_interval),
        ] + (["--network-node"] if self.is_network_node(host) else [])
        if self.qemu is not None:
            argv = self.qemu.agent_argv(host, flags, self.redis.port)
        else:
            argv = [
                PYTHON,
                "-m",
                "ciaoweb.agent",
                "--driver",
                "sim",
                "--sim-name",
                self.config.name,
                "--broker",
                self.broker_url,
                "--credential-file",
                str(self.credential_path(host)),
                "--state-dir",
                str(self.agent_state_dir(host)),
                *flags,
            ]
        process = ManagedProcess(f"agent-{host}", argv, self._agent_env(), self.run_dir).start()
        self.agents[host] = process
        return process

    # --- hosts ----------------------------------------------------------------------

    def _start_guests(self) -> None:
        from .qemu.nodes import QemuNodes

        if self.redis is None:
            raise ClusterError("QEMU nodes reach the cluster's own Redis only (no redis_url)")
        self.progress(f"[1/6] QEMU guests {self.config.name}: booting hosts with igb NICs")
        self.qemu = QemuNodes(self.config.name, self.run_dir, self.config.topology)
        self.qemu.up(self.progress)

    def hosts(self) -> list[str]:
        """The cluster's host names (none before it starts)."""
        if self.qemu is not None:
            return self.qemu.names()
        return list(self.sim.hosts()) if self.sim is not None else []

    def is_network_node(self, host: str) -> bool:
        if self.qemu is not None:
            return self.qemu.is_network_node(host)
        return bool(self.sim.topology.host(host).network_node)

    def exec_prefix(self, host: str) -> list[str]:
        """An argv prefix that runs a command on `host` (var/demo.json's `exec`)."""
        if self.qemu is not None:
            return self.qemu.exec_prefix(host)
        return ["ip", "netns", "exec", self.sim.host_netns(host)]

    def agent_state_dir(self, host: str) -> Path:
        """Inside the simulator's state dir, so `simulator clean` finds its pid files."""
        return Path(self.sim.state_dir) / "agents" / host

    def agent_log(self, host: str) -> Path:
        if self.qemu is not None:
            return self.qemu.agent_log(host)
        return self.agents[host].log_path

    def credential_path(self, host: str) -> Path:
        if self.qemu is not None:
            return self.qemu.credential_path(host)
        return self.agent_state_dir(host) / "credential.json"

    def _enroll_hosts(self) -> None:
        """Enrol every host (as an admin would), write each agent's credential file, and
        let each agent's broker user in."""
        hosts = self.hosts()
        if not hosts:
            return
        args = ["localcluster_enroll", "--json"]
        for host in hosts:
            if self.is_network_node(host):
                args += ["--network-node", host]
        issued = json.loads(self._manage(*args, *hosts))
        missing = set(hosts) - set(issued)
        if missing:
            raise ClusterError(f"enrolment issued no credential for {sorted(missing)}")
        for host in hosts:
            self.secrets[host] = issued[host]
            Credential(host, issued[host]).write(self.credential_path(host))
        if self.redis is not None:
            self.redis.set_agents({h: broker_password(s) for h, s in self.secrets.items()})

    def _start_broker(self) -> None:
        if self.redis is not None:
            self.redis.start()
        else:
            self._flush_broker()

    def _spawn(
        self,
        name: str,
        argv: list[str],
        user: str | None = None,
        pass_fds: tuple[int, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> ManagedProcess:
        env = (self._env_as(user) if user else self.env()) | (extra_env or {})
        return ManagedProcess(name, argv, env, self.run_dir, pass_fds).start()

    def stop(self) -> None:
        """Reverse order of start-up; safe to call twice and after a failed start."""
        # Agents first (they report to the controller), then controller, then server; each
        # group asked to stop at once, so a slow warm shutdown does not add up. A guest's
        # agent goes with its guest (its host-side process only watches it).
        if self.qemu is not None:
            self.qemu.down()
        for group in (list(self.agents.values()), [self.controller, self.liveness], self.servers):
            stop_all([process for process in group if process is not None])
        self.agents.clear()
        if self.redis is not None:
            self.redis.stop()  # last: the others ack or requeue their messages on the way
        if self._api is not None:
            self._api.close()
            self._api = None
        if self.sim is not None:
            self._stop_agent_daemons()
            self.sim.down()
            self.sim = None
        self.qemu = None
        stop_from_pid_files(self.run_dir)

    def _stop_agent_daemons(self) -> None:
        """dnsmasq servers the agents started outlive them: stop them by pid file."""
        stop_agent_daemons(Path(self.sim.state_dir))

    def _clear_leftovers(self) -> None:
        """A previous run of the same name that crashed: what `make clean` would end."""
        clean_clusters(self.config.name)

    def _flush_broker(self) -> None:
        """An external Redis: queues of an earlier run would replay stale tasks (our own
        Redis starts empty)."""
        import redis

        redis.Redis.from_url(self.config.redis_url).flushdb()

    # --- readiness and API ------------------------------------------------------------

    def _wait_ready(self, timeout: float = 180.0) -> None:
        if self.qemu is not None:
            timeout = 600.0  # agents import Celery and pyroute2 under TCG
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                reply = httpx.post(
                    f"{self.url}/api/v1/auth/token/",
                    timeout=15,  # password hashing is slow on a loaded machine
                    json={"username": self.admin_username, "password": self.admin_password},
                )
                if reply.status_code == 200:
                    self.admin_token = reply.json()["token"]
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ClusterError("API server did not come up:\n" + self.server.log_tail())
            time.sleep(0.2)
        expected = set(self.hosts())
        self.wait_for(
            lambda: expected <= self.online_hosts(),
            timeout=max(5.0, deadline - time.monotonic()),
            what="every host online",
        )

    def check_alive(self) -> None:
        redis = self.redis.process if self.redis is not None else None
        for process in [redis, *self.servers, self.controller, self.liveness]:
            if process is not None and not process.alive():
                raise ClusterError(f"{process.name} exited:\n{process.log_tail()}")
        for host, process in self.agents.items():
            if not process.alive():
                try:
                    log = self.agent_log(host).read_text(errors="replace").splitlines()[-30:]
                except FileNotFoundError:
                    log = []
                raise ClusterError(
                    f"{process.name} exited:\n{process.log_tail()}\n" + "\n".join(log)
                )

    def online_hosts(self) -> set[str]:
        hosts = self.api.get("/api/v1/hosts/", params={"page_size": 1000}).json()["results"]
        return {h["name"] for h in hosts if h["state"] == "online"}

    @property
    def api(self) -> httpx.Client:
        """An admin-authenticated REST client."""
        if self._api is None:
            self._api = self.client(self.admin_token)
        return self._api

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Token {token}"}
        )

    def token_for(self, username: str, password: str) -> str:
        reply = httpx.post(
            f"{self.url}/api/v1/auth/token/", json={"username": username, "password": password}
        )
        reply.raise_for_status()
        return reply.json()["token"]

    def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 30.0,
        what: str = "",
        interval: float | None = None,
    ) -> Any:
        """Poll until predicate() is truthy; return its value. Raises with `what`.

        Without `interval`, polls every 50 ms at first, then less often, up to every
        250 ms: most predicates are API calls, and a long wait polled at 20 Hz kept a
        core of a 2-core machine busy answering it, slowing what it waited for."""
        deadline = time.monotonic() + timeout
        pause = interval if interval is not None else POLL_FIRST
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out after {timeout}s waiting for {what or predicate}")
            time.sleep(pause)
            if interval is None:
                pause = min(pause * 1.25, POLL_LAST)

    def wait_instance(
        self, instance_id: str, states=("running", "error"), client=None, timeout: float = 60.0
    ) -> dict:
        client = client or self.api

        def settled() -> dict | None:
            body = client.get(f"/api/v1/instances/{instance_id}/").json()
            return body if body.get("state") in states else None

        return self.wait_for(settled, timeout=timeout, what=f"instance {instance_id} in {states}")

    def write_info(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "url": self.url,
                    "username": self.admin_username,
                    "password": self.admin_password,
                    "broker": self.broker_url,  # no credentials
                    "node_kind": self.config.nodes,
                    # DESIGN.md §3a: exec + [argv...] runs argv on that host.
                    "nodes": {host: {"exec": self.exec_prefix(host)} for host in self.hosts()},
                },
                indent=2,
            )
        )
        tmp.chmod(0o600)
        tmp.replace(path)
