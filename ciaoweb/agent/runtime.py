"""Instance runtimes: where an instance's network namespace comes from.

On a real node the container runtime or hypervisor owns the namespace and we only
create it when asked; in the simulator an instance is a namespace (and, for a VM, a
guest process that does its own DHCP).
"""

from __future__ import annotations

import subprocess
from typing import Protocol

from .names import instance_netns


class InstanceRuntime(Protocol):
    # Namespace holding the node's own links (bridges, VXLAN); None = the root namespace.
    host_netns: str | None

    def create(self, name: str, kind: str) -> str:
        """Create (idempotently) the instance's namespace; return its name."""
        ...

    def delete(self, name: str) -> None:
        """Remove the namespace (VFs must have been unplugged first); idempotent."""
        ...


class NetnsRuntime:
    """Plain `ip netns` namespaces on the node itself (containers on real hosts)."""

    host_netns = None

    def create(self, name: str, kind: str) -> str:
        netns = instance_netns(name)
        existing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        if netns not in {line.split()[0] for line in existing.splitlines() if line.strip()}:
            subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
            subprocess.run(
                ["ip", "-n", netns, "link", "set", "lo", "up"], check=True, capture_output=True
            )
        return netns

    def delete(self, name: str) -> None:
        subprocess.run(["ip", "netns", "del", instance_netns(name)], capture_output=True)


class SimRuntime:
    """Instances of the simulator: containers are namespaces, VMs run a guest."""

    def __init__(self, sim, host: str) -> None:
        self.sim = sim
        self.host = host
        self.host_netns = sim.host_netns(host)

    def create(self, name: str, kind: str) -> str:
        return self.sim.create_instance(self.host, name, kind)

    def delete(self, name: str) -> None:
        self.sim.delete_instance(name)
