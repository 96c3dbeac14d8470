"""kill -9 at each step of a launch, a migration and an evacuation: of the controller's
worker, of the agent the step waits for, and of Redis (no persistence: every queued
and unacked message is lost). Each run ends when every operation it started is
`succeeded`, or `failed` with a reason, within the watchdog's bound; then nothing is
stuck, no VF leaked, and the IPs recorded before the fault are unchanged.

The matrix (workflow, step, victim) runs whole in CI, 24 runs; `make soak` (CIAO_SOAK=1)
repeats it with seeded random delays after the step is reached (CIAO_FAULT_SEED).
"""

from __future__ import annotations

import secrets
import time

import pytest

from tests.worlds import API, LiveWorld, ok, results

from .conftest import (
    COMPUTE,
    SEED,
    SOAK,
    own_cluster,
    restart_agent,
    wait_online,
)
from .invariants import assert_recovered, snapshot_ips

pytestmark = [pytest.mark.e2e, pytest.mark.soak, pytest.mark.timeout(900)]

STEPS = {
    "launch": ("pending", "dhcp", "plug"),
    "migrate": ("pending", "plug-target", "unplug-source"),
    "evacuate": ("pending", "children"),
}
VICTIMS = ("controller", "agent", "redis")
MATRIX = [(w, s, v) for w, steps in STEPS.items() for s in steps for v in VICTIMS]
ROUNDS = 3 if SOAK else 1
# Step timeout 6 s × 3 attempts per step, a few steps, plus restarts: generous, and
# only a wait (the test fails if an operation never ends), not a measured figure.
SETTLE = 120.0


@pytest.fixture(scope="module")
def ops_cluster():
    with own_cluster("relo") as local:
        yield local


@pytest.fixture(scope="module")
def ops_world(ops_cluster):
    world = LiveWorld(ops_cluster)
    tenant = world.tenant("opfaults", member=False)
    networks = [
        world.network(tenant, "fixed", "10.81.0.0/24", by_admin=True),
        world.network(
            tenant, "dyn", "10.82.0.0/24", ipam="dynamic", physnet="physnet2", by_admin=True
        ),
    ]
    yield world, tenant, networks
    world.cleanup()


def _operation(cluster, **filters) -> dict | None:
    rows = results(cluster.api, "operations", **filters)
    return max(rows, key=lambda o: o["created"]) if rows else None


def _wait_step(cluster, step: str, **filters) -> dict:
    """The newest matching operation once it is at `step` (or past it: a short step may
    be over before we look; the step actually seen is reported)."""
    order = [*STEPS["launch"], *STEPS["migrate"], *STEPS["evacuate"]]

    def reached() -> dict | None:
        operation = _operation(cluster, **filters)
        if operation is None:
            return None
        if step == "pending" or operation["state"] in ("succeeded", "failed"):
            return operation
        current = operation["step"]
        return operation if current in order and order.index(current) >= order.index(step) else None

    return cluster.wait_for(reached, timeout=60, interval=0.01, what=f"operation at {step}")


def _ended(cluster, operation_id: str) -> dict:
    def ended() -> dict | None:
        body = ok(cluster.api.get(f"{API}/operations/{operation_id}/"))
        return body if body["state"] in ("succeeded", "failed") else None

    body = cluster.wait_for(
        ended, timeout=SETTLE, interval=0.2, what=f"operation {operation_id} ended"
    )
    assert body["state"] == "succeeded" or body["error"].strip(), body
    return body


def _kill(cluster, victim: str, host: str) -> None:
    if victim == "controller":
        cluster.restart_controller(kill=True)
    elif victim == "agent":
        restart_agent(cluster, host)
    else:
        # Down for a moment: publishes and heartbeats in between fail.
        cluster.restart_redis(kill=True, down=0.5)


def _launch(world, tenant, networks, host: str, kind: str = "container") -> dict:
    return world.instance(tenant, f"f-{secrets.token_hex(3)}", kind, networks, host=host)


def _running(world, tenant, networks, host: str) -> dict:
    return world.running(_launch(world, tenant, networks, host)["id"], timeout=SETTLE)


def _settled_and_clean(world, cluster, instance_ids, ips, what: str) -> list[dict]:
    bodies = [world.wait(i, timeout=SETTLE) for i in instance_ids]
    for body in bodies:
        assert body["state"] == "running" or body["error"].strip(), body
    assert_recovered(cluster, ips, timeout=60, what=what)
    return bodies


@pytest.mark.parametrize("round_", range(ROUNDS))
@pytest.mark.parametrize(("workflow", "step", "victim"), MATRIX)
def test_kill_at_each_step(ops_cluster, ops_world, rng, workflow, step, victim, round_):
    world, tenant, networks = ops_world
    cluster = ops_cluster
    delay = rng.uniform(0, 0.3) if round_ else 0.0
    source, target = rng.sample(COMPUTE, 2)
    if workflow == "launch":
        instance = _launch(world, tenant, networks, source, kind=rng.choice(("container", "vm")))
        operation = _wait_step(cluster, step, instance=instance["id"], kind="create")
        seen = operation["step"] or operation["state"]
        time.sleep(delay)
        victim_host = "netnode" if step == "dhcp" else source
        _kill(cluster, victim, victim_host)
        _ended(cluster, operation["id"])
        kept = [instance["id"]]
        ips = None
    elif workflow == "migrate":
        instance = _running(world, tenant, networks, source)
        ips = snapshot_ips(cluster, [instance["id"]])
        reply = cluster.api.post(
            f"{API}/instances/{instance['id']}/migrate/", json={"host": target}
        )
        assert reply.status_code == 202, reply.text
        operation = _wait_step(cluster, step, instance=instance["id"], kind="migrate")
        seen = operation["step"] or operation["state"]
        time.sleep(delay)
        victim_host = source if step == "unplug-source" else target
        _kill(cluster, victim, victim_host)
        _ended(cluster, operation["id"])
        kept = [instance["id"]]
    else:
        kept = [_running(world, tenant, networks, source)["id"] for _ in range(2)]
        ips = snapshot_ips(cluster, kept)
        host_id = next(h["id"] for h in results(cluster.api, "hosts") if h["name"] == source)
        reply = cluster.api.post(f"{API}/hosts/{host_id}/evacuate/", json={})
        assert reply.status_code in (200, 202), reply.text
        operation = _wait_step(cluster, step, host=host_id, kind="evacuate")
        seen = operation["step"] or operation["state"]
        time.sleep(delay)
        victim_host = source
        _kill(cluster, victim, victim_host)
        parent = _ended(cluster, operation["id"])
        for child in results(cluster.api, "operations", kind="migrate", host=host_id):
            if child.get("parent") == parent["id"]:
                _ended(cluster, child["id"])
        ok(cluster.api.post(f"{API}/hosts/{host_id}/restore/", json={}))
    if victim == "agent":
        wait_online(cluster, victim_host, timeout=60)
    print(f"{workflow} killed {victim} at {step} (seen: {seen}, delay {delay:.2f}s, seed {SEED})")
    _settled_and_clean(world, cluster, kept, ips, what=f"{workflow}/{step}/{victim}")
    for instance_id in kept:
        world.delete_instance(instance_id, timeout=SETTLE)
    assert_recovered(cluster, timeout=60, what=f"after {workflow}/{step}/{victim} clean-up")
