"""Dual-stack networks on the simulator, with the agent's own code: the network node's
dnsmasq (router advertisements, DHCPv6 reservations, AAAA records) and the node agents
plumbing containers and VMs on two hosts, on real packets.

The specs are the plain dicts the controller sends (ciaoweb.orchestration.specs); the
addresses in them are computed by the controller's own functions (networks.ipv6).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import uuid

import pytest

from ciaoweb.agent.cnci import DhcpServers
from ciaoweb.agent.dhcp.client import obtain_lease
from ciaoweb.agent.drivers.sim import sim_driver
from ciaoweb.agent.node import NodeAgent
from ciaoweb.agent.overlay import Overlay
from ciaoweb.agent.runtime import SimRuntime
from ciaoweb.networks.ipv6 import eui64, server_address
from simulator import Simulator, Topology
from tests.prereqs import unavailable
from tests.simulator.helpers import wait_for

from .rigs import open_sim_rig, sim_prerequisites

pytestmark = pytest.mark.sim

PREFIX = "fd00:77::/64"
CIDR = "10.77.0.0/24"
DOMAIN = "v6.example"
# Guest autoconfiguration waits for the kernel: link-local DAD, RS/RA, DAD of a SLAAC
# address (about 2-3 s); generous for a loaded machine.
GUEST_WAIT = 30.0


def ping(netns: str, address: str, count: int = 2) -> bool:
    args = ["ip", "netns", "exec", netns, "ping", "-c", str(count), "-W", "1", "-i", "0.2"]
    return subprocess.run([*args, address], capture_output=True).returncode == 0


def global_ipv6(netns: str, ifname: str) -> set[str]:
    """Usable (not tentative) global IPv6 addresses of an interface, read off the kernel."""
    shown = subprocess.run(
        ["ip", "-n", netns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "global"],
        capture_output=True,
        text=True,
    ).stdout
    found = set()
    for line in shown.splitlines():
        fields = line.split()
        if "inet6" in fields and "tentative" not in fields:
            found.add(fields[fields.index("inet6") + 1].split("/")[0])
    return found


def aaaa(netns: str, name: str, server: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "busybox", "nslookup", "-type=AAAA", name, server],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return done.stdout


class Network:
    """A managed dual-stack network and the specs the controller would send for it."""

    def __init__(self, vlan: int, mode: str, server_vf: int, cidr: str = CIDR) -> None:
        self.id = uuid.uuid4().hex
        self.vlan, self.mode, self.cidr = vlan, mode, cidr
        self.net6 = ipaddress.IPv6Network(PREFIX)
        self.server_ipv4 = str(ipaddress.IPv4Network(cidr).broadcast_address - 1)
        self.server_ipv6 = server_address(self.net6)
        self.server_vf = server_vf
        self.mac = f"02:dd:00:00:{vlan // 256:02x}:{vlan % 256:02x}"
        self.reservations: list[dict] = []

    def reserve(self, name: str, mac: str, ip: str, ipv6: str) -> dict:
        self.reservations.append({"mac": mac, "ip": ip, "hostname": name, "ipv6": ipv6})
        return self.reservations[-1]

    def server_spec(self) -> dict:
        return {
            "network_id": self.id,
            "cidr": self.cidr,
            "gateway": str(ipaddress.IPv4Network(self.cidr).network_address + 1),
            "server_ip": self.server_ipv4,
            "ipam": "controller",
            "dns_domain": DOMAIN,
            "vlan": self.vlan,
            "mtu": 1500,
            "mac": self.mac,
            "ipv6_cidr": PREFIX,
            "ipv6_mode": self.mode,
            "server_ipv6": self.server_ipv6,
            "vf": {"id": "vf", "pf": "pf0", "index": self.server_vf, "pci_address": ""},
            "overlay": None,
            "reservations": self.reservations,
        }

    def instance_spec(self, name: str, kind: str, reservation: dict, pf_index: int) -> dict:
        return {
            "instance_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.id}.{name}")),
            "name": name,
            "kind": kind,
            "tenant_id": "t",
            "generation": 1,
            "announce": False,
            "attachments": [
                {
                    "attachment_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.id}.{name}.a")),
                    "network_id": self.id,
                    "ifname": "eth1",
                    "mac": reservation["mac"],
                    "ip": reservation["ip"],
                    "prefixlen": 24,
                    "gateway": None,
                    "ipam": "controller",
                    "kind": "sriov",
                    "vlan": self.vlan,
                    "physnet": "physnet1",
                    "mtu": 1500,
                    "dns_domain": DOMAIN,
                    "hostname": name,
                    "ipv6": reservation["ipv6"],
                    "ipv6_cidr": PREFIX,
                    "ipv6_mode": self.mode,
                    "vf": {"id": name, "pf": "pf0", "index": pf_index, "pci_address": ""},
                    "overlay": None,
                }
            ],
            "context": {"purpose": "test"},
        }


@pytest.fixture
def cloud(tmp_path, searchable_tmp):
    """node1 (also the network node) and node2, each with its agent; the servers."""
    with open_sim_rig(tmp_path) as rig:
        agents, runtimes = {}, {}
        for host in ("node1", "node2"):
            runtimes[host] = SimRuntime(rig.sim, host)
            agents[host] = NodeAgent(
                host, rig.driver(host), runtimes[host], _dhcp_client(searchable_tmp / host)
            )
        servers = DhcpServers(
            str(searchable_tmp / "netnode"),
            rig.driver("node1"),
            runtimes["node1"],
            Overlay(runtimes["node1"].host_netns, None),
        )
        started: list[Network] = []
        try:
            yield agents, servers, started
        finally:
            for network in started:
                servers.remove(network.server_spec())


def _dhcp_client(hook_dir):
    hook_dir.mkdir(parents=True, exist_ok=True)
    return lambda netns, ifname, hostname=None: obtain_lease(
        netns, ifname, hook_dir=hook_dir, hostname=hostname
    ).ip


def _serve(servers: DhcpServers, started: list, network: Network) -> None:
    outcome = servers.ensure(network.server_spec())
    assert outcome["ok"], outcome
    started.append(network)


def _launch(agent: NodeAgent, spec: dict) -> tuple[str, dict]:
    result = agent.ensure_instance(spec)
    assert result.ok, result.error
    return result.netns, result.attachments[0].to_dict()


def _migrate(source: NodeAgent, target: NodeAgent, spec: dict, pf_index: int) -> str:
    """Make before break, as the migrate workflow does: plug on the target with the same
    MAC (a new VF), then unplug the source."""
    moved = {**spec, "generation": spec["generation"] + 1, "announce": True}
    moved["attachments"] = [
        {**a, "vf": {**a["vf"], "index": pf_index}} for a in spec["attachments"]
    ]
    netns, _ = _launch(target, moved)
    released = source.release_instance(spec)
    assert released.ok, released.error
    return netns


def test_dhcpv6_reservation_for_containers_and_vms_across_hosts_and_migration(cloud):
    agents, servers, started = cloud
    net_a = Network(vlan=100, mode="dhcpv6", server_vf=0)
    c1 = net_a.reserve("c1", "02:aa:00:00:00:01", "10.77.0.10", "fd00:77::10")
    v1 = net_a.reserve("v1", "02:aa:00:00:00:02", "10.77.0.11", "fd00:77::11")
    _serve(servers, started, net_a)
    # Another tenant's network: another VLAN, the same IPv4 and IPv6 prefixes.
    net_b = Network(vlan=200, mode="dhcpv6", server_vf=1)
    x1 = net_b.reserve("x1", "02:bb:00:00:00:01", "10.77.0.20", "fd00:77::20")
    _serve(servers, started, net_b)

    c1_spec = net_a.instance_spec("c1", "container", c1, pf_index=2)
    c1_ns, c1_report = _launch(agents["node1"], c1_spec)
    v1_spec = net_a.instance_spec("v1", "vm", v1, pf_index=0)
    v1_ns, v1_report = _launch(agents["node2"], v1_spec)
    x1_ns, _ = _launch(agents["node2"], net_b.instance_spec("x1", "vm", x1, pf_index=1))

    # The container: the agent set the reservation and reports it; the VM says nothing.
    assert (c1_report["ipv6"], c1_report["ipv6_source"]) == ("fd00:77::10", "controller")
    assert c1_report["ip"] == "10.77.0.10"
    assert v1_report["ipv6"] is None
    assert global_ipv6(c1_ns, "eth1") == {"fd00:77::10"}
    # The VM's guest asked DHCPv6 itself (DUID-LL of its MAC) and got the reservation.
    assert wait_for(lambda: "fd00:77::11" in global_ipv6(v1_ns, "eth1"), GUEST_WAIT)
    assert wait_for(lambda: "fd00:77::20" in global_ipv6(x1_ns, "eth1"), GUEST_WAIT)

    assert ping(c1_ns, "fd00:77::11") and ping(v1_ns, "fd00:77::10")
    assert ping(c1_ns, "10.77.0.11") and ping(v1_ns, "10.77.0.10")
    # The other tenant's VM, same prefixes on VLAN 200, reaches none of them.
    for address in ("fd00:77::10", "fd00:77::11", "10.77.0.10", "10.77.0.11"):
        assert not ping(x1_ns, address, count=1), address
    assert not ping(c1_ns, "fd00:77::20", count=1)
    # AAAA from the network's own dnsmasq, asked from an instance over IPv6.
    assert "fd00:77::11" in aaaa(c1_ns, f"v1.{DOMAIN}", net_a.server_ipv6)
    assert "fd00:77::10" in aaaa(v1_ns, "c1", net_a.server_ipv6)
    assert "fd00:77::10" not in aaaa(x1_ns, f"c1.{DOMAIN}", net_b.server_ipv6)

    # Migration keeps both addresses: the VM to node1 (a new guest asks DHCPv6 again, the
    # reservation follows the MAC), the container to node2 (set from the same spec).
    v1_ns = _migrate(agents["node2"], agents["node1"], v1_spec, pf_index=3)
    assert wait_for(lambda: "fd00:77::11" in global_ipv6(v1_ns, "eth1"), GUEST_WAIT)
    c1_ns = _migrate(agents["node1"], agents["node2"], c1_spec, pf_index=2)
    assert global_ipv6(c1_ns, "eth1") == {"fd00:77::10"}
    assert wait_for(lambda: ping(c1_ns, "fd00:77::11"), 10)
    assert ping(v1_ns, "fd00:77::10") and ping(v1_ns, "10.77.0.10")


def test_slaac_address_is_the_predicted_eui64_and_survives_migration(cloud):
    agents, servers, started = cloud
    net = Network(vlan=300, mode="slaac", server_vf=0)
    c2_mac, v2_mac = "02:cc:00:00:00:01", "02:cc:00:00:00:02"
    predicted = {mac: eui64(net.net6, mac) for mac in (c2_mac, v2_mac)}
    c2 = net.reserve("c2", c2_mac, "10.77.0.30", predicted[c2_mac])
    v2 = net.reserve("v2", v2_mac, "10.77.0.31", predicted[v2_mac])
    _serve(servers, started, net)

    c2_ns, c2_report = _launch(agents["node1"], net.instance_spec("c2", "container", c2, 2))
    v2_spec = net.instance_spec("v2", "vm", v2, pf_index=0)
    v2_ns, _ = _launch(agents["node2"], v2_spec)
    assert (c2_report["ipv6"], c2_report["ipv6_source"]) == (predicted[c2_mac], "slaac")
    # The VM's own kernel formed its address from dnsmasq's router advertisement.
    assert wait_for(lambda: global_ipv6(v2_ns, "eth1") == {predicted[v2_mac]}, GUEST_WAIT)
    assert ping(c2_ns, predicted[v2_mac]) and ping(v2_ns, predicted[c2_mac])
    assert predicted[v2_mac] in aaaa(c2_ns, f"v2.{DOMAIN}", net.server_ipv6)

    v2_ns = _migrate(agents["node2"], agents["node1"], v2_spec, pf_index=3)
    assert wait_for(lambda: global_ipv6(v2_ns, "eth1") == {predicted[v2_mac]}, GUEST_WAIT)
    assert wait_for(lambda: ping(c2_ns, predicted[v2_mac]), 10)


def test_underlay_ipv6_of_a_container_is_reported_and_a_vms_is_not(tmp_path, searchable_tmp):
    """An `ipam=underlay` dual-stack network: the physical network's router (the
    simulator's underlay dnsmasq) announces its /64; the agent reports the address a
    container's kernel formed from it; a VM's guest forms its own, which nobody reports."""
    if missing := sim_prerequisites():
        unavailable(f"the simulator {missing}")
    topo = Topology.from_flags(
        hosts=1, pfs=1, vfs=2, underlays=["physnet1:300:10.30.0.0/24,fd00:30::/64"]
    )
    sim = Simulator.up(topo, name=f"t{os.getpid()}u6", base_dir=tmp_path / "sim")
    try:
        driver = sim_driver(sim.name, "node1", state_dir=tmp_path / "state", sim=sim)
        agent = NodeAgent(
            "node1", driver, SimRuntime(sim, "node1"), _dhcp_client(searchable_tmp / "u")
        )
        net = Network(vlan=300, mode="slaac", server_vf=0, cidr="10.30.0.0/24")
        net.net6 = ipaddress.IPv6Network("fd00:30::/64")
        specs = {}
        for n, kind in enumerate(("container", "vm")):
            mac = f"02:ee:00:00:00:0{n + 1}"
            spec = net.instance_spec(f"u{n}", kind, {"mac": mac, "ip": None, "ipv6": None}, n)
            for att in spec["attachments"]:
                att.update(ipam="underlay", ipv6_cidr="fd00:30::/64")
            specs[kind] = (spec, eui64(net.net6, mac))
        netns, report = _launch(agent, specs["container"][0])
        assert (report["ipv6"], report["ipv6_source"]) == (specs["container"][1], "underlay")
        assert report["ip_source"] == "underlay" and report["ip"].startswith("10.30.0.")
        vm_ns, vm_report = _launch(agent, specs["vm"][0])
        assert vm_report["ipv6"] is None  # honestly unknown: the guest configures itself
        assert wait_for(lambda: global_ipv6(vm_ns, "eth1") == {specs["vm"][1]}, GUEST_WAIT)
        assert ping(netns, specs["vm"][1]) and ping(netns, "fd00:30::1")
    finally:
        sim.down()
