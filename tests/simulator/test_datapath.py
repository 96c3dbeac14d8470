"""Packets through the simulated SR-IOV datapath: VLANs, spoofchk/trust, link state,
rate limits, outages, the management network."""

from __future__ import annotations

import pytest

from simulator import MacSetFailed, NotSupported

from .helpers import add_addr, attach, flush_neigh, link_show, measure_mbit, ping, sh

pytestmark = pytest.mark.sim

MAC_A, MAC_B, MAC_C = "52:54:00:aa:00:01", "52:54:00:aa:00:02", "52:54:00:aa:00:03"


def test_same_vlan_pings_across_hosts_other_vlan_does_not(make_sim):
    sim = make_sim(hosts=2, vfs=2)
    a = attach(sim, "node1", "pf0", 0, "a", mac=MAC_A, vlan=100, cidr="10.1.0.1/24")
    b = attach(sim, "node2", "pf0", 0, "b", mac=MAC_B, vlan=100, cidr="10.1.0.2/24")
    c = attach(sim, "node2", "pf0", 1, "c", mac=MAC_C, vlan=200, cidr="10.1.0.3/24")
    assert ping(a, "10.1.0.2")
    assert not ping(a, "10.1.0.3", count=1)
    assert not ping(c, "10.1.0.2", count=1)
    # the VLAN is observable: the representor is a port of that VLAN's eswitch bridge
    out = link_show(sim.host_netns("node2"), "pf0r1")
    assert "master pf0b200" in out
    # moving C to VLAN 100 joins the domain
    sim.set_vf("node2", "pf0", 1, vlan=100)
    assert ping(c, "10.1.0.1")
    assert sim.get_vf("node2", "pf0", 1).vlan == 100
    del b


def test_spoofchk_drops_foreign_source_mac_and_trust_lifts_it(make_sim):
    sim = make_sim(hosts=2, vfs=1)
    a = attach(sim, "node1", "pf0", 0, "a", mac=MAC_A, vlan=100, cidr="10.2.0.1/24")
    b = attach(sim, "node2", "pf0", 0, "b", mac=MAC_B, vlan=100, cidr="10.2.0.2/24")
    assert sim.get_vf("node1", "pf0", 0).spoofchk is True
    assert ping(a, "10.2.0.2")
    # the guest changes its own MAC: the NIC drops what it sends
    sh(a, "ip", "link", "set", "dev", "eth0", "address", "52:54:00:bb:bb:bb")
    flush_neigh(a, b)
    assert not ping(a, "10.2.0.2", count=2)
    sim.set_vf("node1", "pf0", 0, trust=True)
    flush_neigh(a, b)
    assert ping(a, "10.2.0.2")
    sim.set_vf("node1", "pf0", 0, trust=False)
    flush_neigh(a, b)
    assert not ping(a, "10.2.0.2", count=2)
    sim.set_vf("node1", "pf0", 0, spoofchk=False)
    flush_neigh(a, b)
    assert ping(a, "10.2.0.2")
    st = sim.get_vf("node1", "pf0", 0)
    assert (st.spoofchk, st.trust, st.mac) == (False, False, MAC_A)


def test_link_state_disable_cuts_traffic(make_sim):
    sim = make_sim(hosts=2, vfs=1)
    a = attach(sim, "node1", "pf0", 0, "a", mac=MAC_A, vlan=7, cidr="10.3.0.1/24")
    attach(sim, "node2", "pf0", 0, "b", mac=MAC_B, vlan=7, cidr="10.3.0.2/24")
    assert ping(a, "10.3.0.2")
    sim.set_vf("node1", "pf0", 0, link_state="disable")
    assert not ping(a, "10.3.0.2", count=2)
    carrier = sh(a, "cat", "/sys/class/net/eth0/carrier", check=False).stdout.strip()
    assert carrier in ("0", "")  # the VF sees no carrier
    sim.set_vf("node1", "pf0", 0, link_state="enable")
    assert ping(a, "10.3.0.2")
    assert sim.get_vf("node1", "pf0", 0).link_state == "enable"


@pytest.mark.timing
@pytest.mark.parametrize("mbit", [20])
def test_max_tx_rate_limits_measured_throughput(make_sim, mbit):
    sim = make_sim(hosts=2, vfs=1)
    a = attach(sim, "node1", "pf0", 0, "a", mac=MAC_A, vlan=9, cidr="10.4.0.1/24")
    b = attach(sim, "node2", "pf0", 0, "b", mac=MAC_B, vlan=9, cidr="10.4.0.2/24")
    sim.set_vf("node1", "pf0", 0, max_tx_rate=mbit)
    measured = measure_mbit(a, b, "10.4.0.2", seconds=3)
    assert abs(measured - mbit) <= 0.2 * mbit, f"{measured:.1f} Mbit/s vs {mbit}"
    # the limit is the VF's transmit: the other direction is not limited
    back = measure_mbit(b, a, "10.4.0.1", seconds=1)
    assert back > 3 * mbit, f"reverse {back:.1f} Mbit/s"
    # survives unplug/replug (a namespace move drops qdiscs; the simulator re-applies it)
    sim.unplug_vf("node1", "pf0", 0)
    sim.plug_vf("node1", "pf0", 0, a, "eth0")
    add_addr(a, "eth0", "10.4.0.1/24")
    measured = measure_mbit(a, b, "10.4.0.2", seconds=2)
    assert abs(measured - mbit) <= 0.2 * mbit, f"after replug {measured:.1f} Mbit/s"
    sim.set_vf("node1", "pf0", 0, max_tx_rate=0)
    assert measure_mbit(a, b, "10.4.0.2", seconds=1) > 3 * mbit


def test_host_down_and_link_flap(make_sim):
    sim = make_sim(hosts=2, vfs=1)
    a = attach(sim, "node1", "pf0", 0, "a", mac=MAC_A, vlan=5, cidr="10.5.0.1/24")
    attach(sim, "node2", "pf0", 0, "b", mac=MAC_B, vlan=5, cidr="10.5.0.2/24")
    h1 = sim.host_netns("node1")
    assert ping(h1, sim.host_mgmt_ip("node2"))
    assert ping(a, "10.5.0.2")
    sim.host_down("node2")
    assert not ping(a, "10.5.0.2", count=1)
    assert not ping(h1, sim.host_mgmt_ip("node2"), count=1)
    sim.host_up("node2")
    assert ping(a, "10.5.0.2")
    assert ping(h1, sim.host_mgmt_ip("node2"))
    sim.flap_link("node1", "pf0", down_seconds=0.3)
    assert ping(a, "10.5.0.2")


def test_mgmt_network_addresses(make_sim):
    sim = make_sim(hosts=3, vfs=0, network_node=True)
    assert sim.hosts() == ["node1", "node2", "node3", "netnode"]
    assert sim.is_network_node("netnode") and not sim.is_network_node("node1")
    ips = [sim.host_mgmt_ip(h) for h in sim.hosts()]
    assert ips == ["10.250.0.1", "10.250.0.2", "10.250.0.3", "10.250.0.4"]
    assert ping(sim.host_netns("netnode"), "10.250.0.1")


def test_faults(make_sim):
    sim = make_sim(hosts=1, vfs=2)
    sim.inject_fault("node1", "pf0", 1, "mac_set_fails")
    with pytest.raises(MacSetFailed):
        sim.set_vf("node1", "pf0", 1, mac=MAC_A)
    assert sim.get_vf("node1", "pf0", 1).mac == "00:00:00:00:00:00"
    sim.set_vf("node1", "pf0", 1, mac=MAC_A)  # one shot: the next one works
    assert sim.get_vf("node1", "pf0", 1).mac == MAC_A
    out = link_show(sim.host_netns("node1"), "pf0v1")
    assert MAC_A in out
    sim.inject_fault("node1", "pf0", None, "link_state_unsupported")
    with pytest.raises(NotSupported):
        sim.set_vf("node1", "pf0", 0, link_state="disable")
    sim.set_vf("node1", "pf0", 0, vlan=3)  # other knobs still work
    sim.clear_faults("node1", "pf0")
    sim.set_vf("node1", "pf0", 0, link_state="disable")
