"""Dual-stack networks on a real local cluster (DESIGN §3a, IPv6), through the public API:
a container and a VM on different hosts ping each other over IPv4 and IPv6; another
tenant on another VLAN with the same prefixes reaches nothing; the DHCPv6 address is the
controller's reservation, the SLAAC one the EUI-64 the API predicted before boot; both
survive the migration of the container and of the VM; AAAA records resolve from an
instance through the network's dnsmasq."""

from __future__ import annotations

import ipaddress

import pytest

from tests.e2e.conftest import (
    SETTLE,
    netns_exec,
    never_pings,
    sriov_attachment,
    wait_guest_address,
    wait_ping,
)

pytestmark = pytest.mark.e2e

CIDR = "10.66.0.0/24"


def _server_ipv6(network: dict) -> str:
    """The managed server's IPv6 address: `<prefix>::2` (docs/api.md, IPv6)."""
    return str(ipaddress.IPv6Network(network["ipv6_cidr"]).network_address + 2)


def _wait_guest_ipv6(cluster, netns: str, ifname: str, address: str) -> None:
    """A VM's guest configures IPv6 itself (SLAAC or DHCPv6): wait for the address,
    past DAD (`tentative` gone)."""

    def configured() -> bool:
        done = netns_exec(netns, "ip", "-6", "-o", "addr", "show", "dev", ifname)
        lines = [line for line in done.stdout.splitlines() if f"inet6 {address}/" in line]
        return bool(lines) and "tentative" not in lines[0]

    cluster.wait_for(
        configured, timeout=SETTLE, interval=0.2, what=f"{address} on {ifname} in {netns}"
    )


def _addresses(instance: dict, network: dict) -> tuple[str, str, str]:
    att = sriov_attachment(instance, network)
    return att["ip"], att["ipv6"], att["ifname"]


def _ping_both(cluster, src: dict, dst: dict, network: dict) -> None:
    ip, ipv6, _ = _addresses(dst, network)
    ifname = sriov_attachment(src, network)["ifname"]
    wait_ping(cluster, src["netns"], ip, ifname)
    wait_ping(cluster, src["netns"], ipv6, ifname)


def _aaaa(cluster, netns: str, fqdn: str, server: str, want: str) -> None:
    def resolves() -> bool:
        done = netns_exec(netns, "busybox", "nslookup", "-type=AAAA", fqdn, server)
        return done.returncode == 0 and want in done.stdout.split("Name:", 1)[-1]

    cluster.wait_for(resolves, timeout=15, interval=0.2, what=f"AAAA {fqdn} -> {want}")


def _migrate(cluster, world, instance: dict, target: str) -> dict:
    reply = world.api.post(f"/api/v1/instances/{instance['id']}/migrate/", json={"host": target})
    assert reply.status_code == 202, reply.text
    moved = cluster.wait_instance(instance["id"], states=("running", "error"), timeout=SETTLE)
    assert moved["state"] == "running", moved["error"]
    assert moved["host_name"] == target
    return moved


def test_dhcpv6_dual_stack_across_hosts_isolation_dns_and_migration(cluster, world):
    tenant = world.tenant("v6a")
    domain = f"{world.suffix}.v6.test"
    network = world.network(tenant, "dual", CIDR, dns_domain=domain, ipv6_cidr="fd00:66::/64")
    assert network["ipv6_mode"] == "dhcpv6"
    made = {
        name: world.instance(tenant, name, kind, [network], host=host)
        for name, kind, host in (("c1", "container", "node1"), ("v1", "vm", "node2"))
    }
    # Reserved at create time, before anything booted.
    reserved = {name: sriov_attachment(body, network) for name, body in made.items()}
    assert {a["ipv6_source"] for a in reserved.values()} == {"controller"}
    assert sorted(a["ipv6"] for a in reserved.values()) == ["fd00:66::10", "fd00:66::11"]
    c1, v1 = (world.running(made[name]["id"]) for name in ("c1", "v1"))
    for body, name in ((c1, "c1"), (v1, "v1")):
        assert sriov_attachment(body, network)["ipv6"] == reserved[name]["ipv6"]

    # The VM's guest asked DHCPv6 itself and was given the reservation.
    v1_ip, v1_ipv6, v1_if = _addresses(v1, network)
    wait_guest_address(cluster, v1["netns"], v1_if, v1_ip)
    _wait_guest_ipv6(cluster, v1["netns"], v1_if, v1_ipv6)
    _ping_both(cluster, c1, v1, network)
    _ping_both(cluster, v1, c1, network)
    _aaaa(cluster, c1["netns"], f"v1.{domain}", _server_ipv6(network), v1_ipv6)

    # Another tenant: the same IPv4 and IPv6 prefixes, its own VLAN.
    other = world.tenant("v6b")
    network_b = world.network(other, "dual", CIDR, ipv6_cidr="fd00:66::/64")
    assert network_b["vlan"] != network["vlan"]
    b1 = world.running(world.instance(other, "b1", "container", [network_b], host="node2")["id"])
    b1_if = sriov_attachment(b1, network_b)["ifname"]
    # b1 has c1's addresses in its own network (.2, ::10): probe v1's, which nobody of
    # tenant B has, so any answer could only come across the VLANs.
    for target in (v1_ipv6, v1_ip):
        assert never_pings(b1["netns"], target, b1_if), target
    # ...and b1's datapath works: its own network's server answers on the same ::2.
    wait_ping(cluster, b1["netns"], _server_ipv6(network_b), b1_if)

    # Migrations keep both addresses, container and VM.
    c1 = _migrate(cluster, world, c1, "node2")
    v1 = _migrate(cluster, world, v1, "node1")
    assert _addresses(c1, network)[:2] == (reserved["c1"]["ip"], reserved["c1"]["ipv6"])
    assert _addresses(v1, network)[:2] == (v1_ip, v1_ipv6)
    _wait_guest_ipv6(cluster, v1["netns"], v1_if, v1_ipv6)
    _ping_both(cluster, c1, v1, network)
    _ping_both(cluster, v1, c1, network)


def test_slaac_address_is_predicted_before_boot_and_survives_migration(cluster, world):
    tenant = world.tenant("v6s")
    network = world.network(
        tenant, "auto", "10.67.0.0/24", ipv6_cidr="fd00:67::/64", ipv6_mode="slaac"
    )
    c2 = world.instance(tenant, "c2", "container", [network], host="node1")
    v2 = world.instance(tenant, "v2", "vm", [network], host="node2")
    predicted = sriov_attachment(v2, network)
    mac = predicted["mac"].split(":")
    interface_id = f"{int(mac[0], 16) ^ 2:02x}{mac[1]}:{mac[2]}ff:fe{mac[3]}:{mac[4]}{mac[5]}"
    expected = ipaddress.IPv6Address(f"fd00:67::{interface_id}")
    assert ipaddress.IPv6Address(predicted["ipv6"]) == expected
    assert predicted["ipv6_source"] == "slaac"
    c2, v2 = world.running(c2["id"]), world.running(v2["id"])
    # The guest's kernel formed exactly that address from dnsmasq's announcement.
    _wait_guest_ipv6(cluster, v2["netns"], predicted["ifname"], predicted["ipv6"])
    _ping_both(cluster, c2, v2, network)
    _ping_both(cluster, v2, c2, network)

    v2 = _migrate(cluster, world, v2, "node1")
    assert sriov_attachment(v2, network)["ipv6"] == predicted["ipv6"]
    _wait_guest_ipv6(cluster, v2["netns"], predicted["ifname"], predicted["ipv6"])
    _ping_both(cluster, c2, v2, network)
    c2 = _migrate(cluster, world, c2, "node3")
    _ping_both(cluster, v2, c2, network)
