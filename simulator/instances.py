"""Instance namespaces: what a container runtime or a VM would give a VF to.

``container``: an empty namespace with ``lo`` up; the node agent configures it.
``vm``: the same plus a guest daemon (:mod:`simulator.guest`) that runs its own
DHCP client on every interface that appears, invisible to the host side.
"""

from __future__ import annotations

from pathlib import Path

from . import guest, names, netns
from .procs import terminate


class Instance:
    def __init__(self, sim: str, name: str, state_dir: Path) -> None:
        self.name = name
        self.netns = names.instance_ns(sim, name)
        self.state_dir = state_dir

    @property
    def guest_pidfile(self) -> Path:
        return self.state_dir / "pids" / f"guest-{self.name}.pid"

    def create(self, kind: str) -> None:
        """Idempotent: a missing namespace or guest is (re)created."""
        netns.create(self.netns)
        if kind == "vm":
            hook = guest.write_hook(self.state_dir / "guest-dhcp-hook.sh")
            hook6 = guest.write_hook(self.state_dir / "guest-dhcp6-hook.sh", guest.HOOK6)
            guest.start(
                self.netns,
                self.guest_pidfile,
                hook,
                self.state_dir / "pids",
                self.name,
                self.state_dir / "logs" / f"guest-{self.name}.log",
                hook6=hook6,
            )

    def destroy(self) -> None:
        """Stop the guest and anything else inside, then delete the namespace.

        Callers unplug VFs first: deleting a namespace destroys the veths in it.
        """
        guest.stop(self.guest_pidfile)
        terminate(netns.pids_by_ns([self.netns]).get(self.netns, []))
        netns.delete(self.netns)
