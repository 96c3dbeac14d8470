"""sriov_numvfs semantics, the fake sysfs, plug/unplug, instances, concurrency."""

from __future__ import annotations

import errno
import multiprocessing
import os
import subprocess
import threading
from pathlib import Path

import pytest

from simulator import DeviceBusy, InvalidArgument, NotFound, Simulator, netns

from .helpers import attach, ping, wait_for

pytestmark = pytest.mark.sim


def host_links(sim: Simulator, host: str) -> list[str]:
    return netns.links(sim.host_netns(host))


def test_numvfs_follows_the_kernel_rules(make_sim):
    sim = make_sim(hosts=1, vfs=4, numvfs=2)
    root = sim.sysfs_root("node1")
    dev = root / "class/net/pf0/device"
    assert (dev / "sriov_totalvfs").read_text().strip() == "4"
    assert (dev / "sriov_numvfs").read_text().strip() == "2"
    assert sim.numvfs("node1", "pf0") == 2
    with pytest.raises(DeviceBusy) as busy:
        sim.set_numvfs("node1", "pf0", 3)
    assert busy.value.errno == errno.EBUSY
    with pytest.raises(InvalidArgument):
        sim.set_numvfs("node1", "pf0", 5)
    with pytest.raises(NotFound):
        sim.get_vf("node1", "pf0", 2)
    sim.set_numvfs("node1", "pf0", 2)  # same value: no-op, like the kernel
    sim.set_numvfs("node1", "pf0", 0)
    assert (dev / "sriov_numvfs").read_text().strip() == "0"
    assert not list(dev.glob("virtfn*"))
    assert not [n for n in host_links(sim, "node1") if n.startswith("pf0v")]
    sim.set_numvfs("node1", "pf0", 4)
    assert sorted(n for n in host_links(sim, "node1") if n.startswith("pf0v")) == [
        "pf0v0",
        "pf0v1",
        "pf0v2",
        "pf0v3",
    ]
    # discovery reads PCI addresses and netdev names from the tree
    virtfn3 = dev / "virtfn3"
    assert virtfn3.resolve().name == sim.vf_pci_address("node1", "pf0", 3)
    assert [p.name for p in (virtfn3 / "net").iterdir()] == ["pf0v3"]
    assert (virtfn3 / "physfn").resolve() == dev.resolve()
    assert dev.resolve().name == sim.pf_pci_address("node1", "pf0")


def test_numvfs_zero_refused_while_a_vf_is_plugged(make_sim):
    sim = make_sim(hosts=1, vfs=2)
    ns = sim.create_instance("node1", "x", "container")
    sim.plug_vf("node1", "pf0", 1, ns, "eth0")
    with pytest.raises(DeviceBusy):
        sim.set_numvfs("node1", "pf0", 0)
    sim.delete_instance("x")
    sim.set_numvfs("node1", "pf0", 0)


def test_plug_unplug_idempotent_and_sysfs_view(make_sim):
    sim = make_sim(hosts=1, vfs=2)
    dev = sim.sysfs_root("node1") / "class/net/pf0/device"
    ns = sim.create_instance("node1", "web", "container")
    assert sim.create_instance("node1", "web", "container") == ns
    sim.set_vf("node1", "pf0", 0, mac="52:54:00:00:00:09", vlan=10)
    sim.plug_vf("node1", "pf0", 0, ns, "eth1")
    sim.plug_vf("node1", "pf0", 0, ns, "eth1")
    st = sim.get_vf("node1", "pf0", 0)
    assert (st.netns, st.ifname) == (ns, "eth1")
    assert netns.links(ns) == ["lo", "eth1"]
    assert "pf0v0" not in host_links(sim, "node1")
    assert not list((dev / "virtfn0" / "net").iterdir())
    sim.unplug_vf("node1", "pf0", 0)
    sim.unplug_vf("node1", "pf0", 0)
    assert "pf0v0" in host_links(sim, "node1")
    assert [p.name for p in (dev / "virtfn0" / "net").iterdir()] == ["pf0v0"]
    assert sim.get_vf("node1", "pf0", 0).netns is None
    # a name clash in the target is EBUSY and leaves the VF at home
    sim.plug_vf("node1", "pf0", 0, ns, "eth1")
    with pytest.raises(DeviceBusy):
        sim.plug_vf("node1", "pf0", 1, ns, "eth1")
    assert "pf0v1" in host_links(sim, "node1")
    assert sim.get_vf("node1", "pf0", 1).netns is None
    sim.delete_instance("web")
    sim.delete_instance("web")
    assert not netns.exists(ns)
    assert {"pf0v0", "pf0v1"} <= set(host_links(sim, "node1"))


def test_vf_comes_back_when_its_instance_namespace_vanished(make_sim):
    sim = make_sim(hosts=2, vfs=1)
    a = attach(sim, "node1", "pf0", 0, "a", mac="52:54:00:00:00:0a", vlan=11)
    attach(sim, "node2", "pf0", 0, "b", mac="52:54:00:00:00:0b", vlan=11, cidr="10.6.0.2/24")
    subprocess.run(["ip", "netns", "delete", a], check=True)  # behind the simulator's back
    sim.unplug_vf("node1", "pf0", 0)
    st = sim.get_vf("node1", "pf0", 0)
    assert (st.netns, st.mac, st.vlan) == (None, "52:54:00:00:00:0a", 11)
    a2 = sim.create_instance("node1", "a2", "container")
    sim.plug_vf("node1", "pf0", 0, a2, "eth0")
    subprocess.run(["ip", "-n", a2, "addr", "add", "10.6.0.1/24", "dev", "eth0"], check=True)
    assert ping(a2, "10.6.0.2")


def test_vf_stranded_by_an_interrupted_plug_comes_back(make_sim):
    """A plug killed between its move and its state write leaves the netdev in the
    instance while the state says it is home; then the namespace goes. The next set_vf
    and plug_vf recreate the VF (as hardware returns it) instead of failing for ever."""
    sim = make_sim(hosts=1, vfs=1)
    hns = sim.host_netns("node1")
    for name in ("killed", "killed2"):
        ns = sim.create_instance("node1", name, "container")
        subprocess.run(  # the move of a plug whose process died before writing state
            ["ip", "-n", hns, "link", "set", "dev", "pf0v0", "netns", ns], check=True
        )
        assert "pf0v0" not in host_links(sim, "node1")
        if name == "killed":
            sim.delete_instance(name)  # the stranded netdev goes with its namespace
        sim.set_vf("node1", "pf0", 0, mac=f"52:54:00:00:00:0{len(name)}", vlan=10)
        assert "pf0v0" in host_links(sim, "node1")
        target = sim.create_instance("node1", f"{name}-next", "container")
        sim.plug_vf("node1", "pf0", 0, target, "eth1")
        assert netns.links(target) == ["lo", "eth1"]
        sim.delete_instance(f"{name}-next")
        sim.delete_instance(name)


def test_delete_instance_unplugs_first(make_sim):
    sim = make_sim(hosts=1, vfs=2)
    ns = sim.create_instance("node1", "db", "container")
    sim.plug_vf("node1", "pf0", 0, ns, "eth0")
    sim.plug_vf("node1", "pf0", 1, ns, "eth1")
    sim.delete_instance("db")
    assert {"pf0v0", "pf0v1"} <= set(host_links(sim, "node1"))
    assert sim.instances() == []


def test_vm_guest_gets_a_lease_from_the_underlay_on_its_own(make_sim):
    sim = make_sim(hosts=1, vfs=1, underlays=["physnet1:300:10.30.0.0/24"])
    mac = "52:54:00:00:03:00"
    ns = attach(sim, "node1", "pf0", 0, "vm1", mac=mac, vlan=300, kind="vm")

    def address():
        out = subprocess.run(
            ["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"],
            capture_output=True,
            text=True,
        ).stdout
        return [w for w in out.split() if w.startswith("10.30.0.")]

    got = wait_for(address, timeout=15)
    assert got, "guest obtained no address"
    leases = wait_for(lambda: sim.underlay_leases("physnet1", 300), timeout=5)
    assert [(le["mac"], le["ip"]) for le in leases] == [(mac, got[0].split("/")[0])]
    assert ping(ns, "10.30.0.1")
    info = sim.instances()[0]
    assert info["kind"] == "vm" and info["guest_pid"]


def _set_mac(args: tuple[str, str, str, int]) -> None:
    name, base, host, index = args
    sim = Simulator.load(name, base)
    for i in range(5):
        sim.set_vf(host, "pf0", index, mac=f"52:54:00:00:{index:02x}:{i:02x}", vlan=100 + i)


def test_concurrent_processes_keep_state_consistent(make_sim):
    """Processes on the same host and on other hosts, each also adding VLANs (which
    touches the shared fabric): no change is lost."""
    sim = make_sim(hosts=2, vfs=4)
    jobs = [
        (sim.name, str(sim.state_dir.parent), h, i) for h in ("node1", "node2") for i in range(4)
    ]
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.map(_set_mac, jobs)
    for host in ("node1", "node2"):
        for i in range(4):
            got = sim.get_vf(host, "pf0", i)
            assert (got.mac, got.vlan) == (f"52:54:00:00:{i:02x}:04", 104)
    bridges = sim.status()["fabric"]["bridges"]
    assert len(bridges) == len(set(bridges)) and {b.split(":")[1] for b in bridges} >= {
        str(v) for v in range(100, 105)
    }


def test_hosts_do_not_wait_for_each_other(make_sim):
    """While node1's devices are locked (an agent busy there), node2 still changes."""
    sim = make_sim(hosts=2, vfs=2)
    done = threading.Event()
    with sim._store.host_transaction("node1"):
        worker = threading.Thread(
            target=lambda: (sim.set_vf("node2", "pf0", 0, mac="52:54:00:00:02:00"), done.set())
        )
        worker.start()
        finished = done.wait(60)  # a deadlock guard, not a speed limit
        assert finished, "node2 waited for node1's lock"
    worker.join()
    assert sim.get_vf("node2", "pf0", 0).mac == "52:54:00:00:02:00"


def test_topology_file_and_validation(sim_dir: Path, sim_name: str, tmp_path: Path):
    from simulator import Topology

    f = tmp_path / "topo.yaml"
    f.write_text(
        "physnets: [phys_a, phys_b]\n"
        "hosts:\n"
        "  - name: c1\n"
        "    pfs: [{name: ens1, physnet: phys_a, sriov_totalvfs: 2},\n"
        "          {name: ens2, physnet: phys_b, sriov_totalvfs: 1, sriov_numvfs: 0}]\n"
        "  - {name: net1, network_node: true,"
        " pfs: [{name: ens1, physnet: phys_b, sriov_totalvfs: 1}]}\n"
    )
    topo = Topology.from_file(f)
    for bad in (
        {"hosts": [{"name": "fab"}]},
        {"hosts": [{"name": "Bad_Name"}]},
        {"hosts": [{"name": "h", "pfs": [{"name": "waytoolongname", "physnet": "p"}]}]},
    ):
        with pytest.raises(InvalidArgument):
            Topology.from_dict({"physnets": ["p"], **bad})
    sim = Simulator.up(topo, name=sim_name, base_dir=sim_dir)
    try:
        assert sim.pfs("c1") == ["ens1", "ens2"]
        assert sim.pf_physnet("c1", "ens2") == "phys_b"
        assert sim.numvfs("c1", "ens2") == 0
        assert sim.vf_netdev("c1", "ens1", 1) == "ens1v1"
        assert os.path.isdir(sim.sysfs_root("net1") / "class/net/ens1")
    finally:
        sim.down()


def test_a_vlan_whose_links_outlived_an_interrupted_set_vf_is_taken_as_is(make_sim):
    """An agent killed after the first set_vf of a VLAN created the eswitch bridge, its
    uplink and the fabric bridge, but before the VLAN was recorded: the next set_vf on
    that VLAN keeps those links instead of failing with "File exists"."""
    sim = make_sim(hosts=1, vfs=2)
    sim.set_vf("node1", "pf0", 0, vlan=20)
    links_after_first = set(host_links(sim, "node1"))
    store = sim._store  # forget the VLAN, as if the state writes had never happened
    with store.transaction() as shared:
        bridges = shared["fabric"]["bridges"]
        shared["fabric"]["bridges"] = [b for b in bridges if not b.endswith(":20")]
    with store.host_transaction("node1") as st:
        st["hosts"]["node1"]["pfs"]["pf0"]["vlans"].remove(20)
    sim.set_vf("node1", "pf0", 1, vlan=20)
    assert set(host_links(sim, "node1")) == links_after_first
    assert sim.get_vf("node1", "pf0", 1).vlan == 20
