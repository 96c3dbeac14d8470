"""A PF's embedded switch, inside its host namespace.

One bridge per VLAN the PF carries (VLAN 0's bridge is named after the PF: it is
the PF netdev); each bridge has a veth uplink to the fabric bridge of the same
(physnet, VLAN).  VF representors are ports of these bridges.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import names, netns
from .cmd import Batch
from .fabric import BRIDGE_OPTS, Fabric


@dataclass
class Eswitch:
    host_netns: str
    host_index: int
    pf: str
    pf_index: int
    physnet_index: int

    def bridge(self, vlan: int) -> str:
        return names.eswitch_bridge(self.pf, vlan)

    def fabric_port(self, vlan: int) -> str:
        return names.fabric_uplink_port(self.host_index, self.pf_index, vlan)

    def add_vlan(self, batch: Batch, fabric: Fabric, vlan: int, *, uplink_up: bool) -> None:
        """Queue the VLAN's eswitch bridge and its uplink into the fabric domain.

        The fabric bridge itself must exist or be queued (``fabric.add_bridge``). Links
        already there are kept: a caller killed after creating them but before recording
        the VLAN (an agent's SIGKILL) must not fail for ever with "File exists".
        """
        br = self.bridge(vlan)
        upl = names.eswitch_uplink(self.pf, vlan)
        port = self.fabric_port(vlan)
        present = set(netns.links(self.host_netns))
        lines = [] if br in present else [f"link add {br} {BRIDGE_OPTS}"]
        lines.append(f"link set {br} up")
        if upl not in present:
            lines.append(f"link add {upl} type veth peer name {port} netns {fabric.netns}")
        lines.append(f"link set {upl} master {br} up")
        batch.add(self.host_netns, *lines)
        fabric.attach(batch, port, names.fabric_bridge(self.physnet_index, vlan), up=uplink_up)
