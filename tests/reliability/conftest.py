"""Fault-injection fixtures: a cluster of our own (short heartbeat and reconcile
intervals, so recovery is quick), a tenant with SR-IOV networks, instance helpers and
the seeded RNG. Every cluster runs its own Redis (LocalCluster.restart_redis kills and
restarts it for the broker faults).

Reproducible: `CIAO_FAULT_SEED` fixes every random delay and choice (default fixed);
`CIAO_SOAK=1` (make soak) multiplies the number of runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _free_port, _fresh_database_url
from tests.worlds import LiveWorld, ok

__all__ = ["ok"]  # re-exported for the fault tests

REPO = Path(__file__).resolve().parents[2]
SOAK = os.environ.get("CIAO_SOAK") == "1"
SEED = int(os.environ.get("CIAO_FAULT_SEED", "8042"))
COMPUTE = ("node1", "node2", "node3")

logging.getLogger("httpx").setLevel(logging.WARNING)


def runs(ci: int, soak: int) -> int:
    return soak if SOAK else ci


def fault_config(name: str):
    from ciaoweb.localcluster.cluster import ClusterConfig

    return ClusterConfig(
        name=name,
        port=_free_port(),
        database_url=_fresh_database_url(f"ciaoweb_{name}"),
        heartbeat_interval=1.0,
        heartbeat_timeout=5.0,
        reconcile_interval=4.0,
        operation_step_timeout=6.0,
        watchdog_interval=1.0,
    )


def leftovers(name: str) -> list[str]:
    """Namespaces and processes of cluster `name` still around after its stop()."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left = [
        line.split()[0]
        for line in netns.splitlines()
        if f"-{name}-" in line or line.split()[0].startswith(f"ciao-{name}")
    ]
    marker = f"/{name}/".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline and (b"dnsmasq" in cmdline or b"ciaoweb" in cmdline):
            shown = cmdline.replace(b"\0", b" ")[:120].decode(errors="replace")
            left.append(f"pid {proc.name}: {shown}")
    return left


def started_cluster(config):
    from ciaoweb.localcluster.cluster import LocalCluster
    from tests.prereqs import require_sim

    require_sim()
    local = LocalCluster(config, progress=lambda line: None)
    local.start()
    return local


def stop_and_check(local) -> None:
    name = local.config.name
    local.stop()
    left = leftovers(name)
    assert not left, f"cluster {name} left behind: {left}"


@contextlib.contextmanager
def own_cluster(prefix: str):
    """A fault cluster `<prefix><pid>` (its own Redis), stopped and checked for leftovers."""
    local = started_cluster(fault_config(f"{prefix}{os.getpid() % 10000}"))
    try:
        yield local
    finally:
        stop_and_check(local)


@pytest.fixture(scope="session")
def fault_cluster():
    """Our own cluster: faults must not disturb the shared `cluster` of other tests."""
    with own_cluster("rel") as local:
        yield local


def make_world(local, tenant_name: str) -> dict:
    """A tenant with a controller-IPAM network on physnet1 and a dynamic one on physnet2,
    made by the admin (tests/worlds.py); `live` is what made them, `owner` the tenant."""
    live = LiveWorld(local, suffix="")
    owner = live.tenant(tenant_name, member=False)
    nets = {
        name: live.network(owner, name, cidr, ipam=ipam, physnet=physnet, by_admin=True)
        for name, physnet, cidr, ipam in (
            ("fixed", "physnet1", "10.71.0.0/24", "controller"),
            ("dyn", "physnet2", "10.72.0.0/24", "dynamic"),
        )
    }
    return {"tenant": owner.body, "networks": nets, "live": live, "owner": owner}


@pytest.fixture(scope="session")
def world(fault_cluster) -> dict:
    return make_world(fault_cluster, "faults")


class Instances:
    """Create/delete instances of the fault tenant on all its networks, with unique names
    (through the world's LiveWorld, as every live-cluster layer does)."""

    def __init__(self, local, world: dict) -> None:
        self.local = local
        self.world = world
        self.live: LiveWorld = world["live"]

    def create(self, host: str | None = None, kind: str = "container", prefix: str = "i") -> dict:
        networks = list(self.world["networks"].values())
        name = f"{prefix}-{secrets.token_hex(3)}"
        return self.live.instance(self.world["owner"], name, kind, networks, host=host)

    def wait(self, instance_id: str, timeout: float = 60.0) -> dict:
        return self.live.wait(instance_id, timeout=timeout)

    def running(self, host: str | None = None, kind: str = "container") -> dict:
        return self.live.running(self.create(host, kind)["id"], timeout=60.0)

    def delete(self, instance_id: str, timeout: float = 60.0) -> None:
        self.live.delete_instance(instance_id, timeout=timeout, accepted=(202, 204, 404))


@pytest.fixture(scope="session")
def instances(fault_cluster, world) -> Instances:
    return Instances(fault_cluster, world)


@pytest.fixture
def rng(request) -> random.Random:
    """One RNG per test, seeded from CIAO_FAULT_SEED and the test's name."""
    seed = f"{SEED}:{request.node.name}"
    print(f"fault RNG seed {seed!r} (CIAO_FAULT_SEED={SEED})")
    return random.Random(seed)


def restart_agent(local, host: str) -> None:
    """SIGKILL the agent's whole process group (worker and pool children) and start a
    new one, as a crash and a supervisor restart would."""
    local.agents[host].kill()
    local.start_agent(host)


def wait_online(local, host: str, online: bool = True, timeout: float = 30.0) -> None:
    local.wait_for(
        lambda: (host in local.online_hosts()) == online,
        timeout=timeout,
        what=f"{host} {'online' if online else 'offline'}",
    )
