"""Issue 15: on a shared `dynamic` network, one tenant's instance sends DHCP naming
another tenant's MAC as `chaddr` (the Ethernet source stays its own: spoofchk). The
network node's chaddr guard (ciaoweb/agent/dhcp/guard.py) drops it: the victim's lease
and recorded IP do not move. The same request with the sender's own MAC is served, so
the path is open and the refusal is the guard's."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import pytest

from ciaoweb.agent.dhcp import guard
from tests.e2e.conftest import API, SETTLE, dhcp_server_ip, netns_exec, ok, sriov_attachment

pytestmark = pytest.mark.e2e

# Sent from inside the hostile instance: a DHCPREQUEST (SELECTING) for `wanted`, naming
# `mac` as chaddr, unicast to the server from the instance's own address and interface.
SENDER = r"""
import os, socket, struct, sys
ifname, server, mac, wanted = sys.argv[1:5]
header = struct.pack(
    "!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, int.from_bytes(os.urandom(4), "big"), 0, 0,
    b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, bytes.fromhex(mac.replace(":", "")), b"", b"",
)
options = bytes([53, 1, 3, 50, 4]) + socket.inet_aton(wanted)
options += bytes([54, 4]) + socket.inet_aton(server) + b"\xff"
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    sock.sendto(header + b"\x63\x82\x53\x63" + options, (server, 67))
"""


def _request(instance: dict, att: dict, server: str, chaddr: str, wanted: str) -> None:
    done = netns_exec(
        instance["netns"], sys.executable, "-c", SENDER, att["ifname"], server, chaddr, wanted
    )
    assert done.returncode == 0, done.stderr


def _server_netns(network: dict) -> str:
    """The network node's namespace of this network's DHCP server (agent/cnci.py names
    it after the network id)."""
    wanted = f"dhcp-{network['id'].replace('-', '')[:12]}"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    found = [name for name in names if name.endswith(wanted)]
    assert len(found) == 1, (wanted, names)
    return found[0]


def _leased_ip(world, instance: dict, network: dict) -> str | None:
    return sriov_attachment(world.get(instance["id"]), network)["ip"]


def test_a_forged_chaddr_on_a_shared_dynamic_network_moves_nothing(cluster, world):
    victim_tenant, hostile_tenant = world.tenant("guard-a"), world.tenant("guard-b")
    network = ok(
        world.api.post(
            f"{API}/networks/",
            json={
                "name": world.name("pool"),
                "kind": "sriov",
                "physnet": "physnet1",
                "cidr": "10.64.0.0/24",
                "ipam": "dynamic",
                "shared": True,
            },
        )
    )
    world.networks.append(network)
    made = {
        "victim": world.instance(victim_tenant, "victim", "container", [network], host="node1"),
        "hostile": world.instance(hostile_tenant, "hostile", "container", [network], host="node2"),
    }
    for body in made.values():
        world.running(body["id"])
        cluster.wait_for(
            lambda b=body: _leased_ip(world, b, network),
            timeout=SETTLE,
            what=f"{body['name']} with a leased IP",
        )
    victim, hostile = (world.get(made[k]["id"]) for k in ("victim", "hostile"))
    victim_att, hostile_att = sriov_attachment(victim, network), sriov_attachment(hostile, network)
    server = dhcp_server_ip(network)
    netns = _server_netns(network)
    dropped_before = guard.dropped(netns)
    free = [
        str(ip)
        for ip in reversed(list(ipaddress.IPv4Network(network["cidr"]).hosts()))
        if str(ip) not in (server, victim_att["ip"], hostile_att["ip"], network["gateway"])
    ]

    # The hostile request: the victim's MAC, another address.
    for _ in range(3):
        _request(hostile, hostile_att, server, victim_att["mac"], free[0])
    # The same request with the sender's own MAC is answered: its recorded IP moves. So
    # by the time it has, the forged ones (sent before) would have been handled too.
    _request(hostile, hostile_att, server, hostile_att["mac"], free[1])
    cluster.wait_for(
        lambda: _leased_ip(world, hostile, network) == free[1],
        timeout=SETTLE,
        what="the hostile instance's own request served",
    )

    assert _leased_ip(world, victim, network) == victim_att["ip"]
    leases = ok(world.api.get(f"{API}/leases/", params={"mac": victim_att["mac"]}))["results"]
    assert [(lease["ip"], lease["state"]) for lease in leases] == [(victim_att["ip"], "active")]
    lease_file = cluster.agent_state_dir("netnode") / f"dhcp-{network['id']}" / "leases"
    by_mac = {line.split()[1]: line.split()[2] for line in lease_file.read_text().splitlines()}
    assert by_mac[victim_att["mac"]] == victim_att["ip"]
    assert free[0] not in by_mac.values()
    assert guard.dropped(netns) >= dropped_before + 3
