"""A host's VXLAN segment (agent/overlay.py) in a namespace of its own: it floods to every
peer it is given, even to one whose instances' MACs it has already learned."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from ciaoweb.agent.overlay import FLOOD_MAC, Overlay, _flood_peers, port_name, vxlan_name
from simulator import netns

pytestmark = pytest.mark.sim

LOCAL, PEER, OTHER = "10.99.9.1", "10.99.9.2", "10.99.9.3"
VNI = 4242


def test_only_all_zero_entries_are_flood_entries():
    fdb = (
        f"{FLOOD_MAC} dst {PEER} self permanent\n"
        f"7a:93:db:b0:5e:fb dst {OTHER} self \n"  # learned from OTHER's traffic
        "33:33:00:00:00:01 self permanent\n"
    )
    assert _flood_peers(fdb) == {PEER}
    assert _flood_peers("") == set()


@pytest.fixture
def host_netns():
    name = f"ciao-ovt-{uuid.uuid4().hex[:8]}"
    netns.create(name)
    subprocess.run(
        ["ip", "-n", name, "addr", "add", f"{LOCAL}/24", "dev", "lo"],
        check=True,
        capture_output=True,
    )
    yield name
    netns.delete(name)


def _flooded(name: str) -> set[str]:
    shown = subprocess.run(
        ["bridge", "-n", name, "fdb", "show", "dev", vxlan_name(VNI)],
        capture_output=True,
        text=True,
        check=True,
    )
    return _flood_peers(shown.stdout)


def test_a_peer_already_learned_from_still_gets_its_flood_entry(host_netns):
    overlay = Overlay(host_netns, LOCAL)
    overlay.ensure_segment(VNI, [OTHER])
    # PEER's traffic has arrived before PEER was in the list: the kernel learned a MAC
    # behind it. ARP for PEER's instances still needs the flood entry.
    subprocess.run(
        ["bridge", "-n", host_netns, "fdb", "append", "7a:93:db:b0:5e:fb"]
        + ["dev", vxlan_name(VNI), "dst", PEER],
        check=True,
        capture_output=True,
    )
    overlay.ensure_segment(VNI, [OTHER, PEER])
    assert _flooded(host_netns) == {OTHER, PEER}


def _link(name: str, ifname: str) -> dict:
    shown = subprocess.run(
        ["ip", "-n", name, "-j", "-d", "addr", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(shown.stdout)[0]


def test_a_join_and_its_redelivery_leave_eth0_as_the_spec_says(host_netns):
    """The pair is made in one request; a second delivery of the same spec finds it made
    and still leaves the port on the bridge and eth0 with its MAC, MTU and address, up."""
    instance = f"ciao-ovi-{uuid.uuid4().hex[:8]}"
    netns.create(instance)
    try:
        overlay = Overlay(host_netns, LOCAL)
        attachment = {
            "attachment_id": str(uuid.uuid4()),
            "ifname": "eth0",
            "mac": "02:42:42:00:00:07",
            "mtu": 1450,
            "overlay": {"vni": VNI, "peers": [PEER]},
        }
        for _ in range(2):
            overlay.plug(attachment, instance, "10.42.0.7/24")
            eth0 = _link(instance, "eth0")
            assert eth0["address"] == attachment["mac"]
            assert eth0["mtu"] == 1450
            assert "UP" in eth0["flags"]
            assert [
                (a["local"], a["prefixlen"]) for a in eth0["addr_info"] if a["family"] == "inet"
            ] == [("10.42.0.7", 24)]
            port = _link(host_netns, port_name(attachment["attachment_id"]))
            assert port["master"] == "ov4242" and "UP" in port["flags"]
        with pytest.raises(RuntimeError, match="ip -batch"):
            overlay.plug(
                {**attachment, "attachment_id": str(uuid.uuid4()), "ifname": "eth1"},
                instance,
                "10.42.0.8/24\nlink del eth0",
            )
        assert _link(instance, "eth0")["address"] == attachment["mac"]  # nothing ran
    finally:
        netns.delete(instance)
