"""The physical network: one fabric namespace per simulator.

It holds one bridge per (physnet, VLAN) L2 domain, created on demand (VLAN 0 is
the untagged domain), and the management bridge every host's ``mgmt0`` plugs into.
"""

from __future__ import annotations

from . import names, netns
from .cmd import Batch, ip_batch

BRIDGE_OPTS = "type bridge stp_state 0 forward_delay 0 mcast_snooping 0"


class Fabric:
    def __init__(self, sim: str) -> None:
        self.netns = names.fabric_ns(sim)

    def create(self) -> None:
        netns.create(self.netns)
        ip_batch(
            self.netns,
            [f"link add {names.MGMT_BRIDGE} {BRIDGE_OPTS}", f"link set {names.MGMT_BRIDGE} up"],
        )

    def destroy(self) -> None:
        netns.delete(self.netns)

    def add_bridge(self, batch: Batch, physnet_index: int, vlan: int) -> str:
        """Queue the creation of the L2 domain (physnet, vlan) in phase 0."""
        br = names.fabric_bridge(physnet_index, vlan)
        # Kept if already there (its creator may have died before recording it).
        create = [] if netns.link_exists(self.netns, br) else [f"link add {br} {BRIDGE_OPTS}"]
        batch.add(self.netns, *create, f"link set {br} up", phase=0)
        return br

    def attach(self, batch: Batch, port: str, bridge: str, *, up: bool = True) -> None:
        """Queue enslaving a port (the fabric end of a veth) in phase 2."""
        state = "up" if up else "down"
        batch.add(self.netns, f"link set {port} master {bridge} {state}", phase=2)

    def set_ports(self, ports: list[str], *, up: bool) -> None:
        ip_batch(self.netns, [f"link set {p} {'up' if up else 'down'}" for p in ports])
