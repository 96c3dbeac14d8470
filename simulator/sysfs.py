"""A fake ``/sys`` per host, laid out like the kernel's, for generic discovery code.

::

    <root>/class/net/<pf>/device -> ../../../bus/pci/devices/<pf pci>
    <root>/bus/pci/devices/<pf pci>/{sriov_totalvfs,sriov_numvfs,net/<pf>/}
    <root>/bus/pci/devices/<pf pci>/virtfn<N> -> ../<vf pci>
    <root>/bus/pci/devices/<vf pci>/{physfn -> ../<pf pci>, net/<vf netdev>/}
    <root>/class/net/<vf netdev>/device -> ../../../bus/pci/devices/<vf pci>

``net/<vf netdev>`` exists only while the VF netdev is in the host namespace, as
in the real (per-namespace) sysfs. ``<pci>/driver -> ../../drivers/ciaosim-pf|-vf``
names the bound driver (a VF has none while unbound, see ``Simulator.unbind_vf``).
The files are informative: writing ``sriov_numvfs`` here does nothing; use
``Simulator.set_numvfs``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PF_DRIVER, VF_DRIVER = "ciaosim-pf", "ciaosim-vf"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _symlink(link: Path, target: str) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


class Sysfs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.devices = root / "bus" / "pci" / "devices"
        self.class_net = root / "class" / "net"

    def add_pf(self, pf: str, pci: str, totalvfs: int) -> None:
        dev = self.devices / pci
        (dev / "net" / pf).mkdir(parents=True, exist_ok=True)
        _write(dev / "sriov_totalvfs", f"{totalvfs}\n")
        _write(dev / "sriov_numvfs", "0\n")
        _write(dev / "vendor", "0x8086\n")
        _write(dev / "device", "0x1572\n")
        for driver in (PF_DRIVER, VF_DRIVER):
            (self.root / "bus" / "pci" / "drivers" / driver).mkdir(parents=True, exist_ok=True)
        _symlink(dev / "driver", f"../../drivers/{PF_DRIVER}")
        (self.class_net / pf).mkdir(parents=True, exist_ok=True)
        _symlink(self.class_net / pf / "device", f"../../../bus/pci/devices/{pci}")

    def set_vfs(self, pf_pci: str, vfs: list[tuple[str, str]]) -> None:
        """Replace the PF's VFs by ``[(vf pci, vf netdev), ...]`` and update numvfs."""
        dev = self.devices / pf_pci
        for link in dev.glob("virtfn*"):
            vf_dev = link.resolve()
            for net in vf_dev.glob("net/*"):
                self._hide_netdev(net.name)
            link.unlink()
            shutil.rmtree(vf_dev, ignore_errors=True)
        for n, (pci, netdev) in enumerate(vfs):
            vf_dev = self.devices / pci
            vf_dev.mkdir(parents=True, exist_ok=True)
            _symlink(vf_dev / "physfn", f"../{pf_pci}")
            _symlink(dev / f"virtfn{n}", f"../{pci}")
            self.set_bound(pci, True)
            self.show_netdev(pci, netdev)
        _write(dev / "sriov_numvfs", f"{len(vfs)}\n")

    def set_bound(self, pci: str, bound: bool) -> None:
        link = self.devices / pci / "driver"
        if bound:
            _symlink(link, f"../../drivers/{VF_DRIVER}")
        elif link.is_symlink():
            link.unlink()

    def show_netdev(self, pci: str, netdev: str) -> None:
        (self.devices / pci / "net" / netdev).mkdir(parents=True, exist_ok=True)
        (self.class_net / netdev).mkdir(parents=True, exist_ok=True)
        _symlink(self.class_net / netdev / "device", f"../../../bus/pci/devices/{pci}")

    def hide_netdev(self, pci: str, netdev: str) -> None:
        shutil.rmtree(self.devices / pci / "net" / netdev, ignore_errors=True)
        self._hide_netdev(netdev)

    def _hide_netdev(self, netdev: str) -> None:
        shutil.rmtree(self.class_net / netdev, ignore_errors=True)
