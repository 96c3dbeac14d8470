"""The simulator driver: the same `SriovDriver` manager, with both seams on the simulator.

- sysfs seam: the generic `Sysfs` reader rooted at the simulator's fake `/sys` for the
  host; only the numvfs write goes through `Simulator.set_numvfs` (the kernel's job).
- netlink seam: `SimNetlink`, the simulator's VF API where real NICs use pyroute2.

No rule (ownership, rollback, original state, numvfs) is re-implemented here.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..metrics import netlink_error
from .base import (
    DeviceBusy,
    DriverError,
    InterfaceNotFound,
    InvalidArgument,
    NotSupported,
    TransientError,
    VfConfig,
)
from .sriov import SriovDriver
from .sysfs import Sysfs


def _sim_errors() -> dict[type[Exception], type[DriverError]]:
    import simulator

    return {
        simulator.NotFound: InterfaceNotFound,
        simulator.DeviceBusy: DeviceBusy,
        simulator.InvalidArgument: InvalidArgument,
        simulator.MacSetFailed: TransientError,
        simulator.NotSupported: NotSupported,
    }


@contextmanager
def _domain_errors(what: str) -> Iterator[None]:
    """Simulator exceptions -> the same domain exceptions the real seams raise."""
    import simulator

    try:
        yield
    except simulator.SimError as exc:
        for sim_type, ours in _sim_errors().items():
            if isinstance(exc, sim_type):
                netlink_error(ours.errno)  # as the kernel's errno would be counted
                raise ours(f"{what}: {exc}") from exc
        netlink_error(None)
        raise DriverError(f"{what}: {exc}") from exc


class SimNetlink:
    """`VfNetlink` over the simulator's API for one simulated host."""

    def __init__(self, sim: Any, host: str) -> None:
        self.sim = sim
        self.host = host

    def set_vf(self, pf: str, index: int, **cfg: Any) -> None:
        with _domain_errors(f"{self.host} {pf} vf {index} set {'/'.join(sorted(cfg))}"):
            self.sim.set_vf(self.host, pf, index, **cfg)

    def get_vf(self, pf: str, index: int) -> VfConfig:
        with _domain_errors(f"{self.host} {pf} vf {index} get"):
            st = self.sim.get_vf(self.host, pf, index)
        return VfConfig(
            mac=st.mac,
            vlan=st.vlan,
            spoofchk=st.spoofchk,
            trust=st.trust,
            link_state=st.link_state,
            max_tx_rate=st.max_tx_rate,
        )

    def move_to_netns(
        self, pf: str, index: int, netdev: str, netns: str, ifname: str, mac: str
    ) -> None:
        # The simulated VF netdev carries the VF MAC itself (set_vf programs it).
        with _domain_errors(f"{self.host} {pf} vf {index} plug into {netns} as {ifname}"):
            self.sim.plug_vf(self.host, pf, index, netns, ifname)

    def move_back(self, pf: str, index: int, netdev: str, netns: str, ifname: str) -> None:
        with _domain_errors(f"{self.host} {pf} vf {index} unplug"):
            if self.sim.get_vf(self.host, pf, index).netns is None:
                raise InterfaceNotFound(f"{pf} vf {index} is not plugged anywhere")
            self.sim.unplug_vf(self.host, pf, index)

    def is_plugged(self, pf: str, index: int, netns: str, ifname: str) -> bool:
        with _domain_errors(f"{self.host} {pf} vf {index} get"):
            st = self.sim.get_vf(self.host, pf, index)
        return st.bound and (st.netns, st.ifname) == (netns, ifname)

    def netdev_mac(self, pf: str, index: int, netdev: str, netns: str | None) -> str | None:
        with _domain_errors(f"{self.host} {pf} vf {index} get"):
            st = self.sim.get_vf(self.host, pf, index)
            if st.netns != netns or (st.ifname or st.netdev) != netdev:
                return None
            return self.sim.vf_netdev_mac(self.host, pf, index)

    def reset_netdev(self, pf: str, index: int, netdev: str, netns: str | None) -> None:
        with _domain_errors(f"{self.host} {pf} vf {index} down/up"):
            self.sim.reset_vf_netdev(self.host, pf, index)

    def vf_capabilities(self, pf: str, index: int) -> dict[str, bool]:
        with _domain_errors(f"{self.host} {pf} capabilities"):
            return self.sim.pf_capabilities(self.host, pf)


class SimSysfs(Sysfs):
    """Reads the simulator's fake /sys; numvfs writes go to the simulator."""

    def __init__(self, sim: Any, host: str) -> None:
        root = Path(sim.sysfs_root(host))
        if (root / "class" / "net").is_dir():
            super().__init__(root.parent)
            self.root, self.class_net = root, root / "class" / "net"
        else:
            super().__init__(root)
        self.sim = sim
        self.host = host

    def _store_num_vfs(self, pf: str, path: Path, n: int) -> None:
        with _kernel_errors():
            self.sim.set_numvfs(self.host, pf, n)

    def _store(self, path: Path, value: str) -> None:
        """driver_override is noted by the simulator's one VF driver; bind/unbind go to it."""
        if path.name == "driver_override":
            return
        if path.name not in ("bind", "unbind"):
            raise OSError(errno.EACCES, f"simulated sysfs: {path} is not writable")
        pf, index = self._vf_of(value.strip())
        with _kernel_errors():
            if path.name == "bind":
                self.sim.bind_vf(self.host, pf, index)
            else:
                self.sim.unbind_vf(self.host, pf, index)

    def _vf_of(self, pci: str) -> tuple[str, int]:
        for pf in self.pf_names():
            for index in self.vf_indexes(pf):
                if self.vf_pci_address(pf, index) == pci:
                    return pf, index
        raise OSError(errno.ENODEV, f"no VF {pci}")


@contextmanager
def _kernel_errors() -> Iterator[None]:
    """Simulator errors shaped like the kernel's answer, so the generic mapping applies."""
    import simulator

    try:
        yield
    except simulator.SimError as exc:
        code = exc.errno or errno.EIO
        raise OSError(code, f"{os.strerror(code)} ({exc})") from exc


def physnets_of_host(sim: Any, host: str) -> dict[str, list[str]]:
    """The physnet -> PFs mapping the simulator's topology gives this host."""
    mapping: dict[str, list[str]] = {}
    for pf in sim.topology.host(host).pfs:
        mapping.setdefault(pf.physnet, []).append(pf.name)
    return mapping


def sim_driver(
    sim_name: str,
    host: str,
    *,
    state_dir: str | os.PathLike[str],
    physnets: Mapping[str, Sequence[str]] | None = None,
    exclude: Mapping[str, Iterable[str | int]] | None = None,
    sim: Any = None,
    vf_drivers: Mapping[str, str] | None = None,
) -> SriovDriver:
    """A `VfDriver` for simulated host `host` of the running simulator `sim_name`.

    Without `physnets` the mapping comes from the simulator's topology, as an operator
    would write it from the cabling.
    """
    from simulator import Simulator

    sim = sim or Simulator.load(sim_name)
    return SriovDriver(
        node=host,
        state_dir=state_dir,
        physnets=physnets if physnets is not None else physnets_of_host(sim, host),
        exclude=exclude,
        sysfs=SimSysfs(sim, host),
        netlink=SimNetlink(sim, host),
        vf_drivers={"ciaosim-pf": "ciaosim-vf", **(vf_drivers or {})},
    )
