"""An honest fake SR-IOV NIC: a temp `/sys` tree plus a netlink seam that keeps VF state.

It behaves like the kernel where the driver can tell the difference: sriov_numvfs only
0->N / N->0 (EBUSY otherwise, ERANGE above totalvfs), virtfnN links appear and vanish
with numvfs, a VF netdev disappears from the host's sysfs while it sits in another
namespace, moving into a missing namespace is ENODEV, a name clash is EEXIST, and an
injected fault makes MAC writes fail like i40e (EAGAIN -> TransientError). It raises
the same domain errors as `PyrouteNetlink` does.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ciaoweb.agent.drivers.base import (
    AlreadyExists,
    InterfaceNotFound,
    InvalidArgument,
    TransientError,
    VfConfig,
)
from ciaoweb.agent.drivers.sysfs import Sysfs


def pf_pci(pf_index: int) -> str:
    return f"0000:{0x20 + pf_index:02x}:00.0"


def vf_pci(pf_index: int, vf_index: int) -> str:
    slot, fn = divmod(vf_index, 8)
    return f"0000:{0x21 + pf_index:02x}:{slot:02x}.{fn}"


@dataclass
class FakeVf:
    config: VfConfig = field(default_factory=VfConfig)
    netdev: str = ""
    netns: str | None = None  # None = the host namespace
    name: str = ""  # current name in its namespace


class FakeNic:
    """The fake hardware: owns the sysfs tree under `root` and every VF's state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.class_net = root / "sys" / "class" / "net"
        self.devices = root / "sys" / "bus" / "pci" / "devices"
        self.pfs: dict[str, int] = {}  # name -> pf index
        self.vfs: dict[tuple[str, int], FakeVf] = {}
        self.namespaces: set[str] = set()
        self.mac_faults: set[tuple[str, int]] = set()

    # --- building -----------------------------------------------------------------

    def add_pf(self, name: str, total_vfs: int, num_vfs: int = 0) -> None:
        index = len(self.pfs)
        self.pfs[name] = index
        dev = self.devices / pf_pci(index)
        (dev / "net" / name).mkdir(parents=True)
        (dev / "sriov_totalvfs").write_text(f"{total_vfs}\n")
        (dev / "sriov_numvfs").write_text("0\n")
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
        for i in range(n):
            netdev = f"{pf}v{i}"
            vf_dev = self.devices / vf_pci(pf_index, i)
            (vf_dev / "net" / netdev).mkdir(parents=True)
            (dev / f"virtfn{i}").symlink_to(f"../{vf_pci(pf_index, i)}")
            self.vfs[(pf, i)] = FakeVf(netdev=netdev, name=netdev)
        (dev / "sriov_numvfs").write_text(f"{n}\n")

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

    # --- the netlink seam (same contract as PyrouteNetlink) -----------------------

    def set_vf(self, pf: str, index: int, **cfg: Any) -> None:
        vf = self._vf(pf, index)
        if "mac" in cfg and (pf, index) in self.mac_faults:
            raise TransientError(f"{pf} vf {index} set mac: {os.strerror(errno.EAGAIN)}")
        try:
            vf.config = vf.config.with_(**cfg)
        except TypeError as exc:
            raise InvalidArgument(str(exc)) from exc

    def get_vf(self, pf: str, index: int) -> VfConfig:
        return self._vf(pf, index).config

    def move_to_netns(
        self, pf: str, index: int, netdev: str, netns: str, ifname: str, mac: str
    ) -> None:
        vf = self._vf(pf, index)
        if vf.netns is not None or vf.name != netdev:
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

    def move_back(self, pf: str, index: int, netdev: str, netns: str, ifname: str) -> None:
        vf = self._vf(pf, index)
        if netns not in self.namespaces:
            raise InterfaceNotFound(f"open netlink in {netns}: no such namespace")
        if vf.netns != netns or vf.name not in (ifname, netdev):
            raise InterfaceNotFound(f"{ifname}/{netdev} not in {netns}")
        vf.netns, vf.name = None, netdev
        (self._sysfs_net(pf, index) / netdev).mkdir(parents=True)

    def is_plugged(self, pf: str, index: int, netns: str, ifname: str) -> bool:
        vf = self._vf(pf, index)
        return vf.netns == netns and vf.name == ifname


class FakeSysfs(Sysfs):
    """The real sysfs reader; only the numvfs write is routed to the fake kernel,
    because a plain file in a temp dir cannot answer EBUSY or create virtfn links."""

    def __init__(self, nic: FakeNic) -> None:
        super().__init__(nic.root)
        self.nic = nic

    def _store_num_vfs(self, pf: str, path: Path, n: int) -> None:
        assert path.exists()
        self.nic.set_num_vfs(pf, n)
