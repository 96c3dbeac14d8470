"""A local cluster's own Redis: broker and Channels layer, with ACL users.

One `redis-server` per cluster, on a free port of 127.0.0.1, its config and ACL file
under the cluster's run dir (`<run dir>/redis/`, 0600), no persistence (a restart loses
every queued message, as the fault tests want). Users and rules are
`ciaoweb.core.broker_acl`'s: `web`, `controller`, `agent-<host>` per enrolled host, the
launcher's own `ciao-admin` (never handed to a process), and `default` off.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from ciaoweb.core.broker_acl import (
    ADMIN_USER,
    CONTROLLER_USER,
    WEB_USER,
    render_acl_file,
)
from ciaoweb.core.credentials import agent_broker_user

from .processes import ManagedProcess

HOST = "127.0.0.1"


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_listened(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def _write_private(path: Path, text: str) -> None:
    """0600 from the start, renamed into place (a restart never reads half a file)."""
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


class OwnRedis:
    """The cluster's redis-server. Passwords are generated per cluster and kept in memory
    (the ACL file holds their hashes only)."""

    def __init__(self, run_dir: Path, env: Callable[[], dict[str, str]]) -> None:
        self.dir = run_dir / "redis"
        self.run_dir = run_dir
        self.env = env
        self.port = 0
        self.conf_path = self.dir / "redis.conf"
        self.acl_path = self.dir / "users.acl"
        self.passwords = {
            WEB_USER: secrets.token_hex(24),
            CONTROLLER_USER: secrets.token_hex(24),
            ADMIN_USER: secrets.token_hex(24),
        }
        self.agents: dict[str, str] = {}  # host -> broker password
        self.process: ManagedProcess | None = None

    # --- URLs -----------------------------------------------------------------------

    @property
    def public_url(self) -> str:
        """No credentials: what var/demo.json shows and what agents are given."""
        return f"redis://{HOST}:{self.port}/0"

    def url(self, user: str) -> str:
        """`user`'s URL with its password (web, controller, agent-<host>, ciao-admin)."""
        return f"redis://{user}:{self.password(user)}@{HOST}:{self.port}/0"

    def password(self, user: str) -> str:
        if user in self.passwords:
            return self.passwords[user]
        for host, password in self.agents.items():
            if agent_broker_user(host) == user:
                return password
        raise KeyError(f"no broker user {user!r}")

    # --- config ---------------------------------------------------------------------

    def set_agents(self, agents: dict[str, str]) -> None:
        self.agents = dict(agents)
        if self.acl_path.exists():
            self.write_acl()

    def write_acl(self) -> None:
        _write_private(
            self.acl_path,
            render_acl_file(
                self.passwords[WEB_USER],
                self.passwords[CONTROLLER_USER],
                self.agents,
                admin_password=self.passwords[ADMIN_USER],
            ),
        )

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        self.write_acl()
        lines = [
            f"bind {HOST}",
            f"port {self.port}",
            "protected-mode yes",
            "daemonize no",
            'logfile ""',  # stdout: the ManagedProcess' log file
            # No persistence: queues live as long as this process (fault tests kill it).
            'save ""',
            "appendonly no",
            f"dir {self.dir}",
            f"aclfile {self.acl_path}",
            "databases 1",  # database 0 only (nobody may SELECT anyway)
            "enable-debug-command no",
            "enable-module-command no",
            "enable-protected-configs no",
            # Redis rewrites its title over argv and environ by default: `make clean`
            # finds our processes by the run-dir marker in their environment.
            "set-proc-title no",
        ]
        _write_private(self.conf_path, "\n".join(lines) + "\n")

    # --- process --------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> OwnRedis:
        """Start redis-server (a first start picks the port; later ones keep it)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise BrokerError("redis-server is missing (apt install redis-server)")
        if not self.port:
            self.port = free_port()
        self.write_config()
        deadline = time.monotonic() + timeout
        while _port_listened(self.port):  # the killed one's socket, or a squatter
            if time.monotonic() > deadline:
                raise BrokerError(f"port {self.port} of the cluster's Redis is taken")
            time.sleep(0.05)
        # The environment carries the run-dir marker (clean finds it) and no password.
        self.process = ManagedProcess(
            "redis", [binary, str(self.conf_path)], self.env(), self.run_dir
        )
        self.process.start()
        self.wait_ready(deadline - time.monotonic())
        return self

    def wait_ready(self, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + max(timeout, 1.0)
        client = self.admin()
        try:
            while True:
                if not self.alive():
                    raise BrokerError(f"redis-server exited:\n{self.process.log_tail()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise BrokerError(f"redis-server did not answer:\n{self.process.log_tail()}")
                time.sleep(0.05)
        finally:
            client.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        """SIGKILL: without persistence every queued and unacked message is lost."""
        if self.process is not None:
            self.process.kill()
        deadline = time.monotonic() + 10
        while self.port and _port_listened(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def restart(self, kill: bool = True, down: float = 0.0) -> None:
        """Kill (or stop) and start again: same port, same ACL file, empty database."""
        if kill:
            self.kill()
        else:
            self.stop()
        time.sleep(down)
        self.start()

    # --- the launcher's own connection ----------------------------------------------

    def admin(self):
        """A client as `ciao-admin` (ACL LOAD, ACL LOG, inspection in tests)."""
        import redis

        return redis.Redis.from_url(self.url(ADMIN_USER), socket_timeout=5)

    def add_agent(self, host: str, password: str) -> None:
        """Let one more agent in while Redis runs: rewrite the ACL file and ACL LOAD."""
        self.agents[host] = password
        self.write_acl()
        if self.alive():
            client = self.admin()
            try:
                client.execute_command("ACL", "LOAD")
            finally:
                client.close()
