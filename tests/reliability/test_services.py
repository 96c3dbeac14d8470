"""Faults of the shared services: the network's dnsmasq, the controller's worker, a
VF whose MAC set fails, a host that drops off the network. Each ends with the shared
recovery check (invariants.assert_recovered), IPs compared with before the fault."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.worlds import ok

from .conftest import SOAK, wait_online
from .invariants import assert_recovered, snapshot_ips

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _dnsmasq_pid(local, network_id: str) -> int | None:
    for pid_file in Path(local.sim.state_dir).glob(f"agents/*/dhcp-{network_id}/dnsmasq.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (ValueError, OSError):
            return None
    return None


def _lease_file(local, network_id: str):
    return next(Path(local.sim.state_dir).glob(f"agents/*/dhcp-{network_id}/leases"))


def test_dnsmasq_killed_is_restarted_with_its_leases(fault_cluster, world, instances):
    kept = [instances.running(), instances.running()]
    ips = snapshot_ips(fault_cluster, [i["id"] for i in kept])
    served_networks = {network["id"] for network in world["networks"].values()}
    for network in world["networks"].values():
        pid = _dnsmasq_pid(fault_cluster, network["id"])
        assert pid, f"no dnsmasq for {network['name']}"
        leases_before = _lease_file(fault_cluster, network["id"]).read_text()
        os.kill(pid, signal.SIGKILL)
        # The agent's periodic reconcile (reconcile_interval) starts it again.
        new = fault_cluster.wait_for(
            lambda n=network, p=pid: (q := _dnsmasq_pid(fault_cluster, n["id"])) and q != p and q,
            timeout=30,
            what=f"dnsmasq of {network['name']} restarted",
        )
        assert new != pid
        leases_after = _lease_file(fault_cluster, network["id"]).read_text()
        for line in leases_before.splitlines():
            mac_ip = tuple(line.split()[1:3])
            assert any(tuple(x.split()[1:3]) == mac_ip for x in leases_after.splitlines()), (
                f"lease {mac_ip} lost by the restart of {network['name']}'s dnsmasq"
            )
    # It serves again: a new instance gets its addresses by DHCP from the restarted servers.
    fresh = instances.running()
    served = [a for a in fresh["attachments"] if a["network"] in served_networks]
    assert len(served) == len(served_networks) and all(a["ip"] for a in served), fresh
    assert_recovered(fault_cluster, ips, what="dnsmasq killed")
    for instance in kept + [fresh]:
        instances.delete(instance["id"])


# Several operations in flight when the worker dies. The kill at each single step of
# each workflow is test_operation_faults' matrix; `make soak` adds the other moments.
@pytest.mark.parametrize("delay", [0.0, 0.6, 1.5] if SOAK else [0.6])
def test_controller_worker_killed_and_restarted(fault_cluster, instances, delay):
    kept = instances.running()
    ips = snapshot_ips(fault_cluster, [kept["id"]])
    made = [instances.create(), instances.create()]
    migrating = fault_cluster.api.post(f"/api/v1/instances/{kept['id']}/migrate/", json={})
    assert migrating.status_code == 202, migrating.text
    time.sleep(delay)
    fault_cluster.restart_controller(kill=True)
    for instance in made + [kept]:
        settled = instances.wait(instance["id"], timeout=60)
        assert settled["state"] == "running" or settled["error"].strip(), settled
    assert_recovered(
        fault_cluster,
        {**ips, **snapshot_ips(fault_cluster, [m["id"] for m in made])},
        what=f"controller worker killed after {delay}s",
    )
    for instance in made + [kept]:
        instances.delete(instance["id"])


def test_vf_mac_set_failure_retries_or_errors_without_leaking(fault_cluster, instances):
    host, pf = "node2", "pf0"
    for index in range(fault_cluster.sim.totalvfs(host, pf)):
        fault_cluster.sim.inject_fault(host, pf, index, "mac_set_fails")
    try:
        instance = instances.wait(instances.create(host=host)["id"])
    finally:
        fault_cluster.sim.clear_faults(host, pf)
    # TransientError is retried with backoff, or the instance says why it failed.
    assert instance["state"] == "running" or "mac" in instance["error"].lower(), instance
    assert_recovered(fault_cluster, what="VF MAC set failed")
    instances.delete(instance["id"])
    assert_recovered(fault_cluster, what="instance with a failed VF deleted")
    # The one-shot fault is gone: the same host provisions normally again.
    again = instances.running(host=host)
    instances.delete(again["id"])


def test_host_down_goes_offline_and_comes_back(fault_cluster, instances):
    host = "node3"
    kept = instances.running(host=host)
    ips = snapshot_ips(fault_cluster, [kept["id"]])
    fault_cluster.sim.host_down(host)
    fault_cluster.agents[host].stop()
    try:
        wait_online(fault_cluster, host, online=False, timeout=30)
        # Its instance is flagged: the host's agent is silent.
        flagged = ok(fault_cluster.api.get(f"/api/v1/instances/{kept['id']}/"))
        assert (flagged["state"], flagged["host_state"]) == ("running", "offline"), flagged
        refused = fault_cluster.api.post(
            "/api/v1/instances/",
            json={
                "tenant": instances.world["tenant"]["id"],
                "name": "on-offline-host",
                "kind": "container",
                "host": host,
                "networks": [{"network": n["id"]} for n in instances.world["networks"].values()],
            },
        )
        assert refused.status_code == 400, refused.text
        # Nothing is scheduled there while it is away.
        elsewhere = instances.running()
        assert elsewhere["host_name"] != host
    finally:
        fault_cluster.sim.host_up(host)
        fault_cluster.start_agent(host)
    wait_online(fault_cluster, host, online=True, timeout=30)
    assert_recovered(fault_cluster, ips, what="host down and back")
    back = instances.running(host=host)
    for instance in (kept, elsewhere, back):
        instances.delete(instance["id"])
    assert_recovered(fault_cluster, what="after host outage clean-up")
