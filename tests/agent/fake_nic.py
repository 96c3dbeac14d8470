"""An honest fake SR-IOV NIC: a temp `/sys` tree plus a netlink seam that keeps VF state.

It behaves like the kernel where the driver can tell the difference, and like the real
igb/igbvf pair where it differs from the textbook (shared/realnic-probe/RESULTS.txt):
- sriov_numvfs only 0->N / N->0 (EBUSY otherwise, ERANGE above totalvfs); virtfnN links
  appear and vanish with numvfs; a VF netdev disappears from the host's sysfs while it
  sits in another namespace; moving into a missing namespace is ENODEV, a name clash
  EEXIST; an injected fault makes MAC writes fail like i40e (EAGAIN -> TransientError).
- VF drivers: new VFs are bound only with `sriov_drivers_autoprobe` 1; with 0 a bind
  needs `driver_override`. A bound VF netdev keeps the MAC it started with when the PF
  changes the admin MAC, until it resets (down/up) or rebinds; an untrusted VF may not
  set another MAC itself (EADDRNOTAVAIL). Unbinding a VF whose netdev is in another
  namespace destroys that netdev; the next bind makes one in the host namespace.
- A PF added with `igb_like=True` lacks link_state (EOPNOTSUPP), min_tx_rate and 802.1ad.
It raises the same domain errors as `PyrouteNetlink` does.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ciaoweb.agent.drivers.base import (
    AlreadyExists,
    InterfaceNotFound,
    InvalidArgument,
    NotSupported,
    TransientError,
    VfConfig,
    error_from_errno,
)
from ciaoweb.agent.drivers.sysfs import Sysfs

ZERO_MAC = "00:00:00:00:00:00"
PF_DRIVER, VF_DRIVER = "ciaofakepf", "ciaofakevf"
IGB_LACKS = ("link_state", "min_tx_rate", "vlan_8021ad")


def pf_pci(pf_index: int) -> str:
    return f"0000:{0x20 + 2 * pf_index:02x}:00.0"


def vf_pci(pf_index: int, vf_index: int) -> str:
    slot, fn = divmod(vf_index, 8)
    return f"0000:{0x21 + 2 * pf_index:02x}:{slot:02x}.{fn}"


def _random_mac() -> str:
    return "02:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(5))


@dataclass
class FakeVf:
    config: VfConfig = field(default_factory=VfConfig)
    netdev: str = ""
    netns: str | None = None  # None = the host namespace
    name: str = ""  # current name in its namespace
    bound: bool = True
    netdev_mac: str = ""  # what the VF netdev uses (not the admin MAC)
    driver_override: str = ""


class FakeNic:
    """The fake hardware: owns the sysfs tree under `root` and every VF's state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.class_net = root / "sys" / "class" / "net"
        self.devices = root / "sys" / "bus" / "pci" / "devices"
        self.drivers = root / "sys" / "bus" / "pci" / "drivers"
        self.pfs: dict[str, int] = {}  # name -> pf index
        self.lacks: dict[str, set[str]] = {}
        self.vfs: dict[tuple[str, int], FakeVf] = {}
        self.namespaces: set[str] = set()
        self.mac_faults: set[tuple[str, int]] = set()
        for driver in (PF_DRIVER, VF_DRIVER):
            (self.drivers / driver).mkdir(parents=True, exist_ok=True)
            for name in ("bind", "unbind"):
                (self.drivers / driver / name).write_text("")

    # --- building -----------------------------------------------------------------

    def add_pf(self, name: str, total_vfs: int, num_vfs: int = 0, igb_like: bool = False) -> None:
        index = len(self.pfs)
        self.pfs[name] = index
        self.lacks[name] = set(IGB_LACKS if igb_like else ())
        dev = self.devices / pf_pci(index)
        (dev / "net" / name).mkdir(parents=True)
        (dev / "sriov_totalvfs").write_text(f"{total_vfs}\n")
        (dev / "sriov_numvfs").write_text("0\n")
        (dev / "sriov_drivers_autoprobe").write_text("1\n")
        (dev / "driver").symlink_to(f"../../drivers/{PF_DRIVER}")
        (self.class_net / name).mkdir(parents=True)
        (self.class_net / name / "device").symlink_to(f"../../../bus/pci/devices/{pf_pci(index)}")
        if num_vfs:
            self.set_num_vfs(name, num_vfs)

    def add_plain_netdev(self, name: str) -> None:
        """A non-SR-IOV netdev (no sriov_totalvfs), like lo or a veth."""
        (self.class_net / name).mkdir(parents=True)

    def add_netns(self, name: str) -> str:
        self.namespaces.add(name)
        return name

    # --- kernel behaviour ---------------------------------------------------------

    def set_num_vfs(self, pf: str, n: int) -> None:
        pf_index = self.pfs[pf]
        dev = self.devices / pf_pci(pf_index)
        current = int((dev / "sriov_numvfs").read_text())
        total = int((dev / "sriov_totalvfs").read_text())
        if n > total:
            raise OSError(errno.ERANGE, os.strerror(errno.ERANGE))
        if current and n:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        for i in range(current):
            (dev / f"virtfn{i}").unlink()
            shutil.rmtree(self.devices / vf_pci(pf_index, i))
            del self.vfs[(pf, i)]
        autoprobe = (dev / "sriov_drivers_autoprobe").read_text().strip() == "1"
        for i in range(n):
            vf_dev = self.devices / vf_pci(pf_index, i)
            (vf_dev / "net").mkdir(parents=True)
            (vf_dev / "driver_override").write_text("(null)\n")
            (dev / f"virtfn{i}").symlink_to(f"../{vf_pci(pf_index, i)}")
            vf = self.vfs[(pf, i)] = FakeVf(netdev=f"{pf}v{i}", bound=False)
            if autoprobe:
                self._bind(pf, i, vf)
        (dev / "sriov_numvfs").write_text(f"{n}\n")

    def _bind(self, pf: str, index: int, vf: FakeVf) -> None:
        """The VF driver's probe: a netdev in the host namespace, with the admin MAC."""
        vf_dev = self.devices / vf_pci(self.pfs[pf], index)
        (vf_dev / "driver").symlink_to(f"../../drivers/{VF_DRIVER}")
        (vf_dev / "net" / vf.netdev).mkdir(parents=True)
        vf.bound, vf.netns, vf.name = True, None, vf.netdev
        vf.netdev_mac = vf.config.mac if vf.config.mac != ZERO_MAC else _random_mac()

    def _unbind(self, pf: str, index: int, vf: FakeVf) -> None:
        """The netdev goes, wherever it is (an instance namespace loses it)."""
        vf_dev = self.devices / vf_pci(self.pfs[pf], index)
        (vf_dev / "driver").unlink()
        shutil.rmtree(vf_dev / "net" / vf.netdev, ignore_errors=True)
        vf.bound, vf.netns, vf.name, vf.netdev_mac = False, None, "", ""

    def sysfs_write(self, path: Path, value: str) -> None:
        """What the kernel does for a write to one of the attributes the driver uses."""
        value = value.strip()
        if path.name == "sriov_drivers_autoprobe":
            path.write_text(f"{value}\n")
            return
        if path.name == "driver_override":
            pci = Path(os.path.realpath(path.parent)).name
            self._vf_by_pci(pci)[2].driver_override = value
            path.write_text(f"{value}\n")
            return
        if path.name in ("bind", "unbind"):
            driver = path.parent.name
            pf, index, vf = self._vf_by_pci(value)
            if path.name == "unbind":
                if not vf.bound:
                    raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
                self._unbind(pf, index, vf)
                return
            if vf.bound:
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
            if driver != VF_DRIVER or vf.driver_override not in ("", VF_DRIVER):
                raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
            if not vf.driver_override and not self._autoprobe(pf):
                raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
            self._bind(pf, index, vf)
            return
        raise OSError(errno.EACCES, f"fake sysfs: {path} is not writable")

    def _autoprobe(self, pf: str) -> bool:
        dev = self.devices / pf_pci(self.pfs[pf])
        return (dev / "sriov_drivers_autoprobe").read_text().strip() == "1"

    def _vf_by_pci(self, pci: str) -> tuple[str, int, FakeVf]:
        for (pf, index), vf in self.vfs.items():
            if vf_pci(self.pfs[pf], index) == pci:
                return pf, index, vf
        raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))

    def _vf(self, pf: str, index: int) -> FakeVf:
        if pf not in self.pfs:
            raise InterfaceNotFound(f"no netdev {pf!r}")
        try:
            return self.vfs[(pf, index)]
        except KeyError:
            raise InterfaceNotFound(f"{pf} has no VF {index}") from None

    def _sysfs_net(self, pf: str, index: int) -> Path:
        return self.devices / vf_pci(self.pfs[pf], index) / "net"

    def _name_taken(self, netns: str, name: str) -> bool:
        return any(v.netns == netns and v.name == name for v in self.vfs.values())

    def _find(self, pf: str, index: int, netdev: str, netns: str | None) -> FakeVf | None:
        vf = self._vf(pf, index)
        return vf if vf.bound and vf.netns == netns and vf.name == netdev else None

    # --- the netlink seam (same contract as PyrouteNetlink) -----------------------

    def set_vf(self, pf: str, index: int, **cfg: Any) -> None:
        vf = self._vf(pf, index)
        if "link_state" in cfg and "link_state" in self.lacks[pf]:
            raise NotSupported(f"{pf} vf {index} set link_state: Operation not supported")
        if "mac" in cfg and (pf, index) in self.mac_faults:
            raise TransientError(f"{pf} vf {index} set mac: {os.strerror(errno.EAGAIN)}")
        try:
            # The admin config only: a running VF netdev keeps its MAC (no reset here).
            vf.config = vf.config.with_(**cfg)
        except TypeError as exc:
            raise InvalidArgument(str(exc)) from exc

    def get_vf(self, pf: str, index: int) -> VfConfig:
        return self._vf(pf, index).config

    def move_to_netns(
        self, pf: str, index: int, netdev: str, netns: str, ifname: str, mac: str
    ) -> None:
        vf = self._vf(pf, index)
        if not vf.bound or vf.netns is not None or vf.name != netdev:
            raise InterfaceNotFound(f"no netdev {netdev!r} in the host namespace")
        if netns not in self.namespaces:
            raise InterfaceNotFound(f"move {netdev} to {netns}: no such namespace")
        if self._name_taken(netns, ifname):
            # The kernel moves first, then the rename fails: the VF is left in netns.
            vf.netns = netns
            shutil.rmtree(self._sysfs_net(pf, index) / netdev)
            raise AlreadyExists(f"rename {netdev} to {ifname} in {netns}: File exists")
        vf.netns, vf.name = netns, ifname
        shutil.rmtree(self._sysfs_net(pf, index) / netdev)
        if vf.netdev_mac != mac:
            # The VF asks the PF for the MAC itself: igb refuses an untrusted VF.
            if vf.config.mac != ZERO_MAC and not vf.config.trust:
                raise error_from_errno(errno.EADDRNOTAVAIL, f"set {ifname} address {mac}")
            vf.netdev_mac = mac

    def move_back(self, pf: str, index: int, netdev: str, netns: str, ifname: str) -> None:
        vf = self._vf(pf, index)
        if netns not in self.namespaces:
            raise InterfaceNotFound(f"open netlink in {netns}: no such namespace")
        if not vf.bound or vf.netns != netns or vf.name not in (ifname, netdev):
            raise InterfaceNotFound(f"{ifname}/{netdev} not in {netns}")
        vf.netns, vf.name = None, netdev
        (self._sysfs_net(pf, index) / netdev).mkdir(parents=True)

    def is_plugged(self, pf: str, index: int, netns: str, ifname: str) -> bool:
        vf = self._vf(pf, index)
        return vf.bound and vf.netns == netns and vf.name == ifname

    def netdev_mac(self, pf: str, index: int, netdev: str, netns: str | None) -> str | None:
        vf = self._find(pf, index, netdev, netns)
        return vf.netdev_mac if vf else None

    def reset_netdev(self, pf: str, index: int, netdev: str, netns: str | None) -> None:
        vf = self._find(pf, index, netdev, netns)
        if vf is None:
            raise InterfaceNotFound(f"no netdev {netdev!r} in {netns or 'host'}")
        if vf.config.mac != ZERO_MAC:  # the VF driver's reset asks the PF for its MAC
            vf.netdev_mac = vf.config.mac

    def vf_capabilities(self, pf: str, index: int) -> dict[str, bool]:
        self._vf(pf, index)
        return {knob: knob not in self.lacks[pf] for knob in IGB_LACKS}


class FakeSysfs(Sysfs):
    """The real sysfs reader; writes are routed to the fake kernel, because a plain file
    in a temp dir cannot answer EBUSY, create virtfn links or bind a driver."""

    def __init__(self, nic: FakeNic) -> None:
        super().__init__(nic.root)
        self.nic = nic

    def _store_num_vfs(self, pf: str, path: Path, n: int) -> None:
        assert path.exists()
        self.nic.set_num_vfs(pf, n)

    def _store(self, path: Path, value: str) -> None:
        self.nic.sysfs_write(path, value)
