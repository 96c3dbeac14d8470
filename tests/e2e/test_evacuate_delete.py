"""Issue 5, acceptance 5: evacuating a host moves all its instances elsewhere with their
IPs and frees its VFs; restoring brings it back. Deleting instances frees and resets
their VFs (original MAC), releases their leases and drops their DHCP reservations."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    API,
    SETTLE,
    ok,
    results,
    sim_vfs,
    sriov_attachment,
    vf_location,
    wait_guest_address,
    wait_ping,
)

pytestmark = pytest.mark.e2e

HOST = "node3"


def _busy_vfs(cluster, host_id: str) -> list[dict]:
    return [
        vf
        for vf in results(cluster.api, "virtual-functions", host=host_id)
        if vf["state"] != "free"
    ]


def test_evacuate_restore_and_delete(cluster, world):
    original = sim_vfs(cluster)  # every VF's config before this test touched any
    hosts = {h["name"]: h for h in results(world.api, "hosts")}
    host_id = hosts[HOST]["id"]
    assert hosts[HOST]["state"] == "online" and not _busy_vfs(cluster, host_id)

    tenant = world.tenant("evac")
    network = world.network(tenant, "data", "10.65.0.0/24", dns_domain=f"{world.suffix}.test")
    peer = world.instance(tenant, "peer", "container", [network], host="node1")
    movers = [
        world.instance(tenant, "c1", "container", [network], host=HOST),
        world.instance(tenant, "v1", "vm", [network], host=HOST),
    ]
    peer = world.running(peer["id"])
    peer_if = sriov_attachment(peer, network)["ifname"]
    before = {}
    for made in movers:
        body = world.running(made["id"])
        att = sriov_attachment(body, network)
        if body["kind"] == "vm":
            wait_guest_address(cluster, body["netns"], att["ifname"], att["ip"])
        wait_ping(cluster, peer["netns"], att["ip"], peer_if)
        before[body["id"]] = body
    assert len(_busy_vfs(cluster, host_id)) == 2

    # --- evacuate --------------------------------------------------------------------
    host = ok(world.api.post(f"{API}/hosts/{host_id}/evacuate/"))
    assert host["state"] == "maintenance"

    def evacuated() -> list[dict] | None:
        bodies = [world.get(i) for i in before]
        done = all(b["state"] == "running" and b["host_name"] != HOST for b in bodies)
        return bodies if done else None

    moved = cluster.wait_for(
        evacuated, timeout=SETTLE, interval=0.2, what=f"every instance of {HOST} running elsewhere"
    )
    for body in moved:
        old, new = sriov_attachment(before[body["id"]], network), sriov_attachment(body, network)
        assert (new["mac"], new["ip"], new["state"]) == (old["mac"], old["ip"], "active")
        assert new["vf"] != old["vf"]
        wait_ping(cluster, peer["netns"], new["ip"], peer_if)
    assert not [i for i in results(world.api, "instances", host=host_id)]
    cluster.wait_for(
        lambda: not _busy_vfs(cluster, host_id), timeout=SETTLE, what=f"every VF of {HOST} free"
    )
    assert ok(world.api.get(f"{API}/hosts/{host_id}/"))["state"] == "maintenance"
    # The VFs the instances left on HOST are reset to what they were before the test.
    for body in before.values():
        location = vf_location(cluster, sriov_attachment(body, network)["vf"])
        assert location[0] == HOST
        state = cluster.sim.get_vf(*location)
        assert (state.mac, state.netns) == (original[location]["mac"], None), location

    # --- restore -----------------------------------------------------------------------
    assert ok(world.api.post(f"{API}/hosts/{host_id}/restore/"))["state"] == "online"
    cluster.wait_for(
        lambda: HOST in cluster.online_hosts(), timeout=SETTLE, what=f"{HOST} online again"
    )

    # --- delete ------------------------------------------------------------------------
    hosts_dir = cluster.agent_state_dir("netnode") / f"dhcp-{network['id']}" / "hosts.d"
    for body in moved:
        att = sriov_attachment(body, network)
        reservation = hosts_dir / att["mac"].replace(":", "-")
        assert reservation.exists(), f"no reservation for {att['mac']} before the delete"
        location = vf_location(cluster, att["vf"])
        world.delete_instance(body["id"])

        vf = ok(world.api.get(f"{API}/virtual-functions/{att['vf']}/"))
        assert vf["state"] == "free", vf
        state = cluster.sim.get_vf(*location)
        assert (state.mac, state.netns) == (original[location]["mac"], None), location
        assert state.vlan == original[location]["vlan"]

        def lease_released(mac=att["mac"]) -> bool:
            leases = results(world.api, "leases", network=network["id"], mac=mac)
            return all(lease["state"] == "released" for lease in leases)

        cluster.wait_for(
            lease_released, timeout=SETTLE, what=f"lease of {att['mac']} released or gone"
        )
        cluster.wait_for(
            lambda path=reservation: not path.exists(),
            timeout=SETTLE,
            what=f"reservation {reservation.name} removed from the DHCP server",
        )
        remaining = results(world.api, "attachments", network=network["id"])
        assert not [a for a in remaining if a["instance"] == body["id"]]
    # The peer's reservation is untouched.
    peer_mac = sriov_attachment(peer, network)["mac"]
    assert (hosts_dir / peer_mac.replace(":", "-")).exists()
