"""The node agent's side of hot-plug on a real simulator: an `ensure_instance` whose spec
lists only a new attachment plugs that VF into the running instance (and runs DHCP on it
alone); `unplug_interfaces` takes one interface out, resets its VF to the saved state,
and leaves the namespace and the other interfaces alone."""

from __future__ import annotations

from ciaoweb.agent.node import NodeAgent
from ciaoweb.agent.runtime import SimRuntime
from tests.agent.rigs import open_sim_rig

INSTANCE = "0b7a3c1e-hot0-4000-8000-000000000001"


def _attachment(attachment_id: str, ifname: str, index: int, mac: str) -> dict:
    return {
        "attachment_id": attachment_id,
        "ifname": ifname,
        "mac": mac,
        "ip": None,
        "ipam": "dynamic",
        "kind": "sriov",
        "vlan": 100 + index,
        "mtu": 1500,
        "hostname": "web",
        "vf": {"pf": "pf0", "index": index},
    }


def _spec(generation: int, *attachments: dict) -> dict:
    return {
        "instance_id": INSTANCE,
        "generation": generation,
        "kind": "container",
        "attachments": list(attachments),
    }


def test_a_hot_plug_plugs_the_new_vf_alone_and_an_unplug_keeps_the_instance(tmp_path):
    with open_sim_rig(tmp_path) as rig:
        driver = rig.driver()
        driver.ensure_numvfs("pf0", 4)
        asked: list[str] = []

        def dhcp(netns: str, ifname: str, hostname: str | None = None) -> str:
            asked.append(ifname)
            return "10.9.0.5"

        agent = NodeAgent(
            "node1", driver, SimRuntime(rig.sim, "node1"), dhcp, state_dir=str(tmp_path / "a")
        )
        eth1 = _attachment("att-1", "eth1", 0, "02:00:00:00:01:01")
        eth2 = _attachment("att-2", "eth2", 1, "02:00:00:00:01:02")
        saved = rig.sim.get_vf("node1", "pf0", 1)
        launched = agent.ensure_instance(_spec(1, eth1))
        assert launched.ok, launched.error
        netns = launched.netns

        plugged = agent.ensure_instance(_spec(2, eth2))
        assert plugged.ok, plugged.error
        assert [a.attachment_id for a in plugged.attachments] == ["att-2"]
        assert asked == ["eth1", "eth2"]  # the running interface is not asked again
        assert rig.location("pf0", 0) == (netns, "eth1")
        assert rig.location("pf0", 1) == (netns, "eth2")
        state = rig.sim.get_vf("node1", "pf0", 1)
        assert (state.mac, state.vlan) == ("02:00:00:00:01:02", 101)

        released = agent.unplug_interfaces(_spec(3, eth2))
        assert released.ok, released.error
        assert rig.location("pf0", 1)[0] is None  # home, out of the instance
        state = rig.sim.get_vf("node1", "pf0", 1)
        assert (state.mac, state.vlan) == (saved.mac, saved.vlan)  # its saved state
        assert rig.location("pf0", 0) == (netns, "eth1")  # the other one stays
        assert driver.owners() == {("pf0", 0): "att-1"}
        assert rig.netns_exec(netns, "ip", "link", "show", "dev", "eth1").returncode == 0
        assert rig.netns_exec(netns, "ip", "link", "show", "dev", "eth2").returncode != 0
        # idempotent: a re-sent unplug finds nothing to do and says so without error
        assert agent.unplug_interfaces(_spec(3, eth2)).ok
