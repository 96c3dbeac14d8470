"""Issue 5, acceptance 3: `dynamic` networks learn IPs from lease events; `underlay`
networks report a container's IP from the agent's DHCP client and honestly leave a VM's
IP unknown, even once its guest holds an underlay lease."""

from __future__ import annotations

import ipaddress

import pytest

from tests.e2e.conftest import (
    SETTLE,
    dhcp_server_ip,
    ok,
    results,
    sriov_attachment,
    wait_guest_address,
)

pytestmark = pytest.mark.e2e

UNDERLAY = ("physnet2", 300, "192.168.30.0/24")


def test_dynamic_ips_come_from_lease_events(cluster, world):
    tenant = world.tenant("ipam-dyn")
    network = world.network(tenant, "dyn", "10.62.0.0/24", ipam="dynamic")
    created = [
        world.instance(tenant, "d1", "container", [network], host="node1"),
        world.instance(tenant, "d2", "vm", [network], host="node2"),
    ]
    for made in created:
        att = sriov_attachment(made, network)
        assert att["ip"] is None and att["ip_source"] == "dhcp"  # unknown until a lease

    def learned(instance_id: str) -> dict | None:
        body = world.get(instance_id)
        att = sriov_attachment(body, network)
        return body if body["state"] == "running" and att["ip"] else None

    cidr = ipaddress.IPv4Network(network["cidr"])
    reserved = {network["gateway"], dhcp_server_ip(network)}
    for made in created:
        body = cluster.wait_for(
            lambda i=made["id"]: learned(i),
            timeout=SETTLE,
            what=f"{made['name']} running with a leased IP",
        )
        att = sriov_attachment(body, network)
        assert att["ip_source"] == "dhcp"
        ip = ipaddress.IPv4Address(att["ip"])
        assert ip in cidr and ip not in (cidr.network_address, cidr.broadcast_address)
        assert att["ip"] not in reserved
        leases = results(tenant.client, "leases", network=network["id"], mac=att["mac"])
        assert [(lease["ip"], lease["state"], lease["attachment"]) for lease in leases] == [
            (att["ip"], "active", att["id"])
        ], leases
        if body["kind"] == "vm":  # the guest really holds the address the API shows
            wait_guest_address(cluster, body["netns"], att["ifname"], att["ip"])
    ips = [sriov_attachment(world.get(m["id"]), network)["ip"] for m in created]
    assert len(set(ips)) == 2


def test_underlay_container_ip_reported_vm_ip_unknown(cluster, world):
    physnet, vlan, cidr = UNDERLAY
    tenant = world.tenant("ipam-ul")
    body = {
        "name": "ul",
        "kind": "sriov",
        "physnet": physnet,
        "vlan": vlan,
        "cidr": cidr,
        "ipam": "underlay",
        "tenant": tenant.id,
    }
    network = ok(world.api.post("/api/v1/networks/", json=body))
    world.networks.append(network)
    container = world.instance(tenant, "u1", "container", [network], host="node1")
    vm = world.instance(tenant, "u2", "vm", [network], host="node2")
    assert sriov_attachment(container, network)["ip_source"] == "underlay"
    vm_att = sriov_attachment(vm, network)
    assert (vm_att["ip"], vm_att["ip_source"]) == (None, "unknown")

    container = world.running(container["id"])
    att = sriov_attachment(container, network)
    assert att["ip_source"] == "underlay" and att["ip"]
    assert ipaddress.IPv4Address(att["ip"]) in ipaddress.IPv4Network(cidr)
    underlay = {lease["mac"]: lease["ip"] for lease in cluster.sim.underlay_leases(physnet, vlan)}
    assert underlay.get(att["mac"]) == att["ip"]  # what the underlay's DHCP server handed out

    vm = world.running(vm["id"])
    vm_att = sriov_attachment(vm, network)
    # The guest does its own DHCP against the underlay: wait until it holds a lease...
    guest_ip = cluster.wait_for(
        lambda: {
            lease["mac"]: lease["ip"] for lease in cluster.sim.underlay_leases(physnet, vlan)
        }.get(vm_att["mac"]),
        timeout=SETTLE,
        interval=0.2,
        what="the VM's guest holding an underlay lease",
    )
    wait_guest_address(cluster, vm["netns"], vm_att["ifname"], guest_ip)
    # ...and nothing pretends to know it: instance, attachment and lease list agree.
    vm = world.get(vm["id"])
    vm_att = sriov_attachment(vm, network)
    assert (vm["state"], vm_att["ip"], vm_att["ip_source"]) == ("running", None, "unknown")
    detail = ok(world.api.get(f"/api/v1/attachments/{vm_att['id']}/"))
    assert (detail["ip"], detail["ip_source"]) == (None, "unknown")
    assert not [
        lease
        for lease in results(world.api, "leases", network=network["id"])
        if lease["mac"] == vm_att["mac"] or lease["ip"] == guest_ip
    ]
