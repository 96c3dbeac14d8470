"""Issue 17, hot-plug end to end: an SR-IOV interface attached to a running container and
to a running VM (the container's address by the agent's DHCP client, the VM's by its
guest, both from the network's reservation) reaches an instance on that network on
another host; detached, the interface is gone from the instance, its VF is back to
`free` with the MAC/VLAN it had before, and its lease and reservation are released."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    API,
    SETTLE,
    netns_exec,
    ok,
    pings,
    results,
    sim_vfs,
    sriov_attachment,
    vf_location,
    wait_guest_address,
    wait_ping,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def layout(cluster, module_world):
    """A container (node1) and a VM (node2) on network `data`, and a peer container on
    node3 on network `extra`, the one hot-plugged."""
    world = module_world
    tenant = world.tenant("hotplug")
    data = world.network(tenant, "data", "10.71.0.0/24")
    extra = world.network(tenant, "extra", "10.72.0.0/24")
    made = {
        "c1": world.instance(tenant, "c1", "container", [data], host="node1"),
        "v1": world.instance(tenant, "v1", "vm", [data], host="node2"),
        "peer": world.instance(tenant, "peer", "container", [extra], host="node3"),
    }
    running = {name: world.running(body["id"]) for name, body in made.items()}
    return {"world": world, "tenant": tenant, "extra": extra, "instances": running}


def _attach(cluster, layout, name: str) -> dict:
    """POST the hot-plug as the tenant's member; the attachment once it is active."""
    client, instance = layout["tenant"].client, layout["instances"][name]
    reply = client.post(
        f"{API}/instances/{instance['id']}/attachments/", json={"network": layout["extra"]["id"]}
    )
    assert reply.status_code == 202, reply.text
    pending = reply.json()
    assert (pending["state"], pending["network"]) == ("pending", layout["extra"]["id"])

    def active() -> dict | None:
        body = ok(client.get(f"{API}/attachments/{pending['id']}/"))
        assert body["state"] in ("pending", "active"), body
        return body if body["state"] == "active" else None

    attachment = cluster.wait_for(active, timeout=SETTLE, interval=0.1, what="attachment active")
    operation = results(client, "operations", instance=instance["id"], kind="attach")[0]
    assert operation["state"] == "succeeded", operation
    assert attachment["ip"] == pending["ip"] and attachment["ip_source"] == "controller"
    return attachment


def _detach_and_check_released(cluster, layout, name: str, attachment: dict, original) -> None:
    """DELETE, wait until it is gone; then its VF, lease and reservation are released."""
    world, client = layout["world"], layout["tenant"].client
    netns = layout["instances"][name]["netns"]
    location = vf_location(cluster, attachment["vf"])
    reservation = (
        cluster.agent_state_dir("netnode")
        / f"dhcp-{layout['extra']['id']}"
        / "hosts.d"
        / attachment["mac"].replace(":", "-")
    )
    assert reservation.exists(), "the reservation reached the DHCP server"
    reply = client.delete(f"{API}/attachments/{attachment['id']}/")
    assert reply.status_code == 202, reply.text
    assert reply.json()["state"] == "releasing"
    cluster.wait_for(
        lambda: client.get(f"{API}/attachments/{attachment['id']}/").status_code == 404,
        timeout=SETTLE,
        interval=0.1,
        what="attachment gone",
    )
    operation = results(client, "operations", instance=layout["instances"][name]["id"])[0]
    assert (operation["kind"], operation["state"]) == ("detach", "succeeded"), operation
    gone = netns_exec(netns, "ip", "link", "show", "dev", attachment["ifname"])
    assert gone.returncode != 0, gone.stdout  # the interface left the instance
    vf = ok(world.api.get(f"{API}/virtual-functions/{attachment['vf']}/"))
    assert vf["state"] == "free", vf
    state = cluster.sim.get_vf(*location)
    assert (state.mac, state.vlan, state.netns) == (
        original[location]["mac"],
        original[location]["vlan"],
        None,
    ), location

    def lease_released() -> bool:
        leases = results(world.api, "leases", network=layout["extra"]["id"], mac=attachment["mac"])
        return all(lease["state"] == "released" for lease in leases)

    cluster.wait_for(lease_released, timeout=SETTLE, what="lease released")
    cluster.wait_for(lambda: not reservation.exists(), timeout=SETTLE, what="reservation removed")
    assert not pings(layout["instances"]["peer"]["netns"], attachment["ip"], wait=1)


def test_hot_plug_into_a_running_container_pings_across_hosts_and_detaches(cluster, layout):
    original = sim_vfs(cluster)
    c1, peer = layout["instances"]["c1"], layout["instances"]["peer"]
    peer_att = sriov_attachment(peer, layout["extra"])
    attachment = _attach(cluster, layout, "c1")
    assert attachment["ifname"] == "eth2"
    location = vf_location(cluster, attachment["vf"])
    assert location[0] == "node1"  # a VF of the instance's own host
    state = cluster.sim.get_vf(*location)
    assert (state.mac, state.vlan, state.netns) == (
        attachment["mac"],
        layout["extra"]["vlan"],
        c1["netns"],
    )
    addresses = netns_exec(c1["netns"], "ip", "-4", "-o", "addr", "show", "dev", "eth2").stdout
    assert f"inet {attachment['ip']}/" in addresses, addresses
    wait_ping(cluster, c1["netns"], peer_att["ip"], "eth2")
    wait_ping(cluster, peer["netns"], attachment["ip"], peer_att["ifname"])
    # its launch interface still works: the hot-plug touched nothing else
    body = ok(layout["tenant"].client.get(f"{API}/instances/{c1['id']}/"))
    assert body["state"] == "running"
    assert [a["state"] for a in body["attachments"]] == ["active"] * 3

    _detach_and_check_released(cluster, layout, "c1", attachment, original)
    # The address went back to the network: attached again, it gets the same one.
    again = _attach(cluster, layout, "c1")
    assert (again["ifname"], again["ip"]) == ("eth2", attachment["ip"])
    _detach_and_check_released(cluster, layout, "c1", again, original)


def test_hot_plug_into_a_running_vm_its_guest_asks_dhcp(cluster, layout):
    original = sim_vfs(cluster)
    v1, peer = layout["instances"]["v1"], layout["instances"]["peer"]
    peer_att = sriov_attachment(peer, layout["extra"])
    attachment = _attach(cluster, layout, "v1")
    assert vf_location(cluster, attachment["vf"])[0] == "node2"
    wait_guest_address(cluster, v1["netns"], attachment["ifname"], attachment["ip"])
    wait_ping(cluster, peer["netns"], attachment["ip"], peer_att["ifname"])
    wait_ping(cluster, v1["netns"], peer_att["ip"], attachment["ifname"])
    _detach_and_check_released(cluster, layout, "v1", attachment, original)


def test_eth0_stays_and_another_tenants_network_is_unknown(cluster, layout):
    client, c1 = layout["tenant"].client, layout["instances"]["c1"]
    eth0 = next(a for a in c1["attachments"] if a["ifname"] == "eth0")
    reply = client.delete(f"{API}/attachments/{eth0['id']}/")
    assert reply.status_code == 400, reply.text
    assert "primary overlay interface" in reply.text
    # another tenant's network is unknown to this member
    other = layout["world"].tenant("hotplug-other")
    foreign = layout["world"].network(other, "data", "10.73.0.0/24")
    reply = client.post(f"{API}/instances/{c1['id']}/attachments/", json={"network": foreign["id"]})
    assert reply.status_code == 404, reply.text
