"""IPv6 through the simulated SR-IOV datapath: neighbour discovery across the PF
switches and the fabric on every VLAN, VLAN isolation with the same prefix, spoofchk
dropping IPv6 frames with a forged source MAC, and the guest's own autoconfiguration."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from simulator import guest

from .helpers import attach, flush_neigh, sh, wait_for

pytestmark = pytest.mark.sim

MAC_A, MAC_B, MAC_C = "52:54:00:aa:00:01", "52:54:00:aa:00:02", "52:54:00:aa:00:03"


def add6(netns: str, cidr: str) -> None:
    # nodad: a configured address is usable at once (DAD would hold it ~1.5 s).
    subprocess.run(["ip", "-n", netns, "addr", "add", cidr, "dev", "eth0", "nodad"], check=True)


def ping6(netns: str, address: str, count: int = 2) -> bool:
    args = ["ping", "-6", "-c", str(count), "-W", "1", "-i", "0.2", address]
    return sh(netns, *args, check=False).returncode == 0


def test_ipv6_pings_across_hosts_on_one_vlan_and_not_from_another(make_sim):
    sim = make_sim(hosts=2, vfs=2)
    a = attach(sim, "node1", "pf0", 0, "a", mac=MAC_A, vlan=100, cidr="10.1.0.1/24")
    b = attach(sim, "node2", "pf0", 0, "b", mac=MAC_B, vlan=100, cidr="10.1.0.2/24")
    c = attach(sim, "node2", "pf0", 1, "c", mac=MAC_C, vlan=200, cidr="10.1.0.3/24")
    for ns, address in ((a, "fd00:1::1/64"), (b, "fd00:1::2/64"), (c, "fd00:1::3/64")):
        add6(ns, address)
    assert ping6(a, "fd00:1::2") and ping6(b, "fd00:1::1")
    # Neighbour discovery found b's MAC through both PF switches and the fabric.
    neighbours = sh(a, "ip", "-6", "neigh", "show", "fd00:1::2").stdout
    assert MAC_B in neighbours
    assert not ping6(a, "fd00:1::3", count=1)
    assert not ping6(c, "fd00:1::2", count=1)
    # Another VLAN with the same prefix: its own domain, joined by moving the VF.
    sim.set_vf("node2", "pf0", 1, vlan=100)
    assert ping6(c, "fd00:1::1")


def test_spoofchk_drops_ipv6_frames_with_a_forged_source_mac(make_sim):
    sim = make_sim(hosts=2, vfs=1)
    a = attach(sim, "node1", "pf0", 0, "a", mac=MAC_A, vlan=100)
    b = attach(sim, "node2", "pf0", 0, "b", mac=MAC_B, vlan=100)
    add6(a, "fd00:2::1/64")
    add6(b, "fd00:2::2/64")
    assert ping6(a, "fd00:2::2")
    sh(a, "ip", "link", "set", "dev", "eth0", "address", "52:54:00:bb:bb:bb")
    flush_neigh(a, b)
    assert not ping6(a, "fd00:2::2", count=2)
    # trust lifts the check: the same forged MAC now passes, so the drop was spoofchk's
    sim.set_vf("node1", "pf0", 0, trust=True)
    flush_neigh(a, b)
    assert ping6(a, "fd00:2::2")


def test_vm_guest_forms_its_slaac_address_from_a_router_advertisement(make_sim, tmp_path):
    """The guest's own autoconfiguration: a router on the VLAN announces a /64 (dnsmasq
    ra-only, as a network's server does), the VM's kernel forms the EUI-64 address."""
    sim = make_sim(hosts=2, vfs=1)
    router = attach(sim, "node1", "pf0", 0, "r", mac=MAC_A, vlan=100)
    add6(router, "fd00:3::2/64")
    pid_file = tmp_path / "ra.pid"
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            router,
            "dnsmasq",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--bind-interfaces",
            "--interface=eth0",
            "--dhcp-range=fd00:3::,ra-only,64",
            "--enable-ra",
            "--ra-param=eth0,0,0",
            f"--pid-file={pid_file}",
            f"--dhcp-leasefile={tmp_path / 'leases'}",
        ],
        check=True,
    )
    try:
        vm = attach(sim, "node2", "pf0", 0, "vm", mac=MAC_B, vlan=100, kind="vm")
        want = "fd00:3::5054:ff:feaa:2"

        def formed() -> bool:
            shown = sh(vm, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
            return want in shown.stdout and "tentative" not in shown.stdout

        assert wait_for(formed, timeout=30)
        assert ping6(router, want)
    finally:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)  # the dnsmasq we started


def test_the_guests_dhcpv4_hook_leaves_ipv6_addresses_alone(make_sim, tmp_path):
    """udhcpc runs its hook's `deconfig` when it starts and when a lease is lost: it must
    flush IPv4 only. (It flushed every global address, and a SLAAC address formed before
    udhcpc started was gone until the next router advertisement, minutes later.)"""
    sim = make_sim(hosts=1, vfs=1)
    ns = attach(sim, "node1", "pf0", 0, "a", mac=MAC_A, vlan=100, cidr="10.4.0.1/24")
    add6(ns, "fd00:4::1/64")
    hook = guest.write_hook(tmp_path / "hook.sh")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "interface": "eth0"}
    subprocess.run(["ip", "netns", "exec", ns, str(hook), "deconfig"], env=env, check=True)
    shown = sh(ns, "ip", "-o", "addr", "show", "dev", "eth0", "scope", "global").stdout
    assert "fd00:4::1/64" in shown
    assert "10.4.0.1/24" not in shown
