"""The sysfs seam: SR-IOV capabilities and VF identities read from `/sys/class/net`.

Every path is rooted at `root` so tests (a temp tree) and the simulator (its fake
`/sys`) use exactly the code that reads a real NIC.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from .base import DeviceBusy, InterfaceNotFound, InvalidArgument, error_from_errno

_PCI_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_VIRTFN_RE = re.compile(r"^virtfn(\d+)$")


class Sysfs:
    """Reads `<root>/sys/class/net/...` (root "/" on a real node)."""

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = Path(root)
        self.class_net = self.root / "sys" / "class" / "net"

    @classmethod
    def from_sys_dir(cls, sys_dir: str | os.PathLike[str]) -> Sysfs:
        """For a tree whose sysfs mount point itself is given (the simulator's fake /sys)."""
        sysfs = cls(Path(sys_dir).parent)
        sysfs.root = Path(sys_dir)
        sysfs.class_net = sysfs.root / "class" / "net"
        return sysfs

    def _device(self, pf: str) -> Path:
        return self.class_net / pf / "device"

    def has_sriov(self, pf: str) -> bool:
        return (self._device(pf) / "sriov_totalvfs").is_file()

    def pf_names(self) -> list[str]:
        """Every netdev that is an SR-IOV PF (used when no physnet mapping is given)."""
        if not self.class_net.is_dir():
            return []
        return sorted(p.name for p in self.class_net.iterdir() if self.has_sriov(p.name))

    def total_vfs(self, pf: str) -> int:
        return self._read_int(pf, "sriov_totalvfs")

    def num_vfs(self, pf: str) -> int:
        return self._read_int(pf, "sriov_numvfs")

    def pf_pci_address(self, pf: str) -> str:
        return _pci_address_of(self._device(pf))

    def vf_indexes(self, pf: str) -> list[int]:
        """Indexes of the virtfnN links present (the kernel creates them on enable)."""
        device = self._require_device(pf)
        found = (_VIRTFN_RE.match(p.name) for p in device.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def vf_pci_address(self, pf: str, index: int) -> str:
        link = self._virtfn(pf, index)
        return _pci_address_of(link)

    def vf_netdev(self, pf: str, index: int) -> str | None:
        """The VF's netdev name while it is in this (the host's) namespace, else None.

        sysfs shows a device's `net/` entries per network namespace, so a VF moved into
        an instance namespace has none here.
        """
        net = self._virtfn(pf, index) / "net"
        try:
            names = sorted(p.name for p in net.iterdir())
        except FileNotFoundError:
            return None
        return names[0] if names else None

    # --- VF driver binding (`sriov_drivers_autoprobe`, `driver_override`, bind/unbind) ---

    def pf_driver(self, pf: str) -> str | None:
        return _driver_of(self._require_device(pf))

    def vf_driver(self, pf: str, index: int) -> str | None:
        """The driver bound to the VF (igbvf, ...), None while unbound."""
        return _driver_of(self._virtfn(pf, index))

    def carrier(self, pf: str) -> bool | None:
        """The PF's link carrier; None where it cannot be read (down, or a fake tree)."""
        try:
            return (self.class_net / pf / "carrier").read_text().strip() == "1"
        except OSError:
            return None

    def admin_up(self, pf: str) -> bool | None:
        """IFF_UP of the PF netdev; None where it cannot be read (a fake tree)."""
        try:
            return bool(int((self.class_net / pf / "flags").read_text(), 16) & 1)
        except (OSError, ValueError):
            return None

    def autoprobe(self, pf: str) -> bool | None:
        """`sriov_drivers_autoprobe`: whether new VFs get a driver; None if not offered."""
        path = self._require_device(pf) / "sriov_drivers_autoprobe"
        try:
            return path.read_text().strip() == "1"
        except FileNotFoundError:
            return None

    def set_autoprobe(self, pf: str, on: bool) -> None:
        path = self._require_device(pf) / "sriov_drivers_autoprobe"
        self._write(path, "1" if on else "0", f"{pf}: write sriov_drivers_autoprobe")

    def bind_vf(self, pf: str, index: int, driver: str) -> None:
        """Bind the VF to `driver` through `driver_override` (works with autoprobe off)."""
        pci = self.vf_pci_address(pf, index)
        device = self._virtfn(pf, index)
        self._write(device / "driver_override", driver, f"{pf} VF {index}: driver_override")
        bind = self.class_net.parents[1] / "bus" / "pci" / "drivers" / driver / "bind"
        self._write(bind, pci, f"{pf} VF {index}: bind {driver}")

    def unbind_vf(self, pf: str, index: int) -> None:
        device = self._virtfn(pf, index)
        if (device / "driver").exists():
            pci = self.vf_pci_address(pf, index)
            self._write(device / "driver" / "unbind", pci, f"{pf} VF {index}: unbind")

    def write_num_vfs(self, pf: str, n: int) -> None:
        """Write sriov_numvfs; kernel errors (EBUSY on N->M, ERANGE) become domain ones."""
        path = self._require_device(pf) / "sriov_numvfs"
        try:
            self._store_num_vfs(pf, path, n)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise DeviceBusy(f"{pf}: sriov_numvfs busy, write 0 first") from exc
            raise error_from_errno(exc.errno or errno.EIO, f"{pf}: write sriov_numvfs") from exc

    # --- helpers ---------------------------------------------------------------

    def _store_num_vfs(self, pf: str, path: Path, n: int) -> None:
        """The write itself; the kernel answers errors as OSError (EBUSY, ERANGE)."""
        path.write_text(f"{n}\n")

    def _store(self, path: Path, value: str) -> None:
        """Any other attribute write (fakes route it to their kernel)."""
        with open(path, "w") as fh:  # one write(2), like `echo value > path`
            fh.write(value)

    def _write(self, path: Path, value: str, what: str) -> None:
        try:
            self._store(path, value)
        except OSError as exc:
            raise error_from_errno(exc.errno or errno.EIO, what) from exc

    def _require_device(self, pf: str) -> Path:
        device = self._device(pf)
        if not device.is_dir():
            raise InterfaceNotFound(f"no PF netdev {pf!r} under {self.root}")
        return device

    def _virtfn(self, pf: str, index: int) -> Path:
        link = self._require_device(pf) / f"virtfn{index}"
        if not link.exists():
            raise InterfaceNotFound(f"{pf} has no VF {index}")
        return link

    def _read_int(self, pf: str, name: str) -> int:
        path = self._require_device(pf) / name
        try:
            return int(path.read_text().strip())
        except FileNotFoundError as exc:
            raise InvalidArgument(f"{pf} is not an SR-IOV PF (no {name})") from exc


def _driver_of(device: Path) -> str | None:
    link = device / "driver"
    return Path(os.path.realpath(link)).name if link.exists() else None


def _pci_address_of(device: Path) -> str:
    """PCI address of a device dir: the basename its symlink resolves to (`virtfnN`,
    `device`), falling back to PCI_SLOT_NAME in uevent for trees made of plain dirs."""
    resolved = Path(os.path.realpath(device)).name
    if _PCI_RE.match(resolved):
        return resolved
    try:
        for line in (device / "uevent").read_text().splitlines():
            if line.startswith("PCI_SLOT_NAME="):
                return line.split("=", 1)[1].strip()
    except FileNotFoundError:
        pass
    return resolved
