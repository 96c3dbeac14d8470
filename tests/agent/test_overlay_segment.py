"""A host's VXLAN segment (agent/overlay.py) in a namespace of its own: it floods to every
peer it is given, even to one whose instances' MACs it has already learned."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from ciaoweb.agent.overlay import FLOOD_MAC, Overlay, _flood_peers, vxlan_name
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
