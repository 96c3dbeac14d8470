"""What `NodeAgent.inventory()` reports, on the fake sysfs sriov rig and the simulator:
each PF's probed capabilities (igb lacks link_state, min_tx_rate and 802.1ad), in a
JSON-friendly shape the controller stores as it is (ciaoweb.inventory.capabilities)."""

from __future__ import annotations

import json

import pytest

from ciaoweb.agent.drivers.netlink import OPTIONAL_KNOBS
from ciaoweb.agent.node import NodeAgent

IGB = dict.fromkeys(OPTIONAL_KNOBS, False)


@pytest.fixture(params=["sriov", pytest.param("sim", marks=pytest.mark.sim)])
def rig(request, tmp_path):
    """pf0 on physnet1, pf1 on physnet2 with igb's quirks (tests/agent/contract_rigs.py)."""
    from .contract_rigs import FakeQuirkRig, open_sim_quirk_rig

    if request.param == "sim":
        with open_sim_quirk_rig(tmp_path) as made:
            yield made
        return
    made = FakeQuirkRig(tmp_path)
    try:
        yield made
    finally:
        made.close()


def agent_inventory(rig) -> dict:
    agent = NodeAgent("node1", rig.driver(), runtime=None, dhcp_client=None)
    # What crosses the broker: JSON.
    return json.loads(json.dumps(agent.inventory(network_node=False)))


def test_inventory_reports_each_pfs_capabilities(rig):
    pfs = {pf["name"]: pf for pf in agent_inventory(rig)["pfs"]}
    for name in ("pf0", "pf1"):
        expected = {knob: rig.supports(name, knob) for knob in OPTIONAL_KNOBS}
        assert pfs[name]["capabilities"] == expected, name
    assert pfs["pf1"]["capabilities"] == IGB  # the igb-like PF lacks every optional knob
    assert pfs["pf0"]["capabilities"]["link_state"] is True


@pytest.mark.django_db
def test_the_controller_stores_what_the_agent_reports(rig):
    from ciaoweb.inventory.models import PhysicalFunction
    from ciaoweb.inventory.services import register_inventory

    register_inventory("node1", agent_inventory(rig))
    pf1 = PhysicalFunction.objects.get(host__name="node1", name="pf1")
    assert pf1.capabilities == IGB
    assert pf1.unsupported_capabilities == ["link_state", "min_tx_rate", "802.1ad"]
    pf0 = PhysicalFunction.objects.get(host__name="node1", name="pf0")
    assert "link_state" not in pf0.unsupported_capabilities
