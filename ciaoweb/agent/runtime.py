"""Instance runtimes: where an instance's network namespace comes from.

On a real node the container runtime or hypervisor owns the namespace and we only
create it when asked; in the simulator an instance is a namespace (and, for a VM, a
guest process that does its own DHCP).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Protocol

from simulator import netns as namespaces
from simulator.errors import CommandFailed

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
    """Plain `ip netns` namespaces on the node itself (containers on real hosts).

    `vm_guests`: a directory for stand-in VM guests. A node without a hypervisor (the
    emulated-igb nodes: no nested virtualisation under TCG) runs a VM as a namespace
    with the simulator's guest daemon in it, which does its own DHCP on every
    interface like a VM's OS would; the VF is still a real igbvf netdev."""

    host_netns = None

    def __init__(self, vm_guests: Path | None = None) -> None:
        self.vm_guests = vm_guests

    def create(self, name: str, kind: str) -> str:
        netns = instance_netns(name)
        try:
            namespaces.create(netns)  # idempotent, and a concurrent creator is fine
        except CommandFailed as exc:  # what callers catch from a failed host command
            raise subprocess.CalledProcessError(
                exc.returncode, exc.args_list, "", exc.stderr
            ) from None
        if kind == "vm" and self.vm_guests is not None:
            from simulator import guest

            hook = guest.write_hook(self.vm_guests / "guest-dhcp-hook.sh")
            hook6 = guest.write_hook(self.vm_guests / "guest-dhcp6-hook.sh", guest.HOOK6)
            guest.start(
                netns,
                self._guest_pidfile(name),
                hook,
                self.vm_guests,
                name,
                self.vm_guests / f"guest-{name}.log",
                hook6=hook6,
            )
        return netns

    def delete(self, name: str) -> None:
        if self.vm_guests is not None:
            from simulator import guest

            guest.stop(self._guest_pidfile(name))
        namespaces.delete(instance_netns(name))

    def _guest_pidfile(self, name: str) -> Path:
        return self.vm_guests / f"guest-{name}.pid"


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
