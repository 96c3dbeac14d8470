"""The sim driver judged by packets: what setup/release do must show on the wire."""

from __future__ import annotations

import pytest

from ciaoweb.agent.drivers.base import VfConfig

from .rigs import open_sim_rig

pytestmark = pytest.mark.sim


@pytest.fixture
def rig(tmp_path):
    with open_sim_rig(tmp_path) as made:
        yield made


def _plug(rig, host, pf, index, owner, mac, vlan, ip):
    netns = rig.new_netns(host)
    rig.driver(host).setup_vf(pf, index, owner, VfConfig(mac=mac, vlan=vlan), netns, "eth1")
    for args in (["addr", "add", f"{ip}/24", "dev", "eth1"], ["link", "set", "eth1", "up"]):
        done = rig.netns_exec(netns, "ip", *args)
        assert done.returncode == 0, done.stderr
    return netns


def _pings(rig, netns, ip) -> bool:
    return rig.netns_exec(netns, "ping", "-c", "1", "-W", "1", ip).returncode == 0


def test_same_vlan_pings_across_hosts_other_vlan_does_not(rig):
    a = _plug(rig, "node1", "pf0", 0, "att-a", "02:10:00:00:00:01", 100, "10.88.0.1")
    _plug(rig, "node2", "pf0", 0, "att-b", "02:10:00:00:00:02", 100, "10.88.0.2")
    _plug(rig, "node1", "pf0", 1, "att-c", "02:10:00:00:00:03", 200, "10.88.0.3")
    assert _pings(rig, a, "10.88.0.2")
    assert not _pings(rig, a, "10.88.0.3")  # same subnet, other VLAN


def test_released_vf_no_longer_answers(rig):
    a = _plug(rig, "node1", "pf0", 0, "att-a", "02:10:00:00:00:01", 100, "10.88.0.1")
    _plug(rig, "node2", "pf0", 0, "att-b", "02:10:00:00:00:02", 100, "10.88.0.2")
    assert _pings(rig, a, "10.88.0.2")
    assert rig.driver("node2").release_vf("pf0", 0, "att-b")
    rig.netns_exec(a, "ip", "neigh", "flush", "all")
    assert not _pings(rig, a, "10.88.0.2")
