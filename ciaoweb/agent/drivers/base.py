"""The VF driver contract: data types, domain exceptions and the `VfDriver` Protocol.

Shaped like sriov-cni / os-vif: a small manager interface over two seams (sysfs and
netlink). Callers (agent tasks) only ever see these types and exceptions, never
pyroute2 or simulator errors.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

LINK_STATES = ("auto", "enable", "disable")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


# --- exceptions -------------------------------------------------------------------


class DriverError(Exception):
    """Base of every error a VF driver raises."""

    errno: int | None = None


class InterfaceNotFound(DriverError):
    errno = errno.ENODEV


class AlreadyExists(DriverError):
    errno = errno.EEXIST


class DeviceBusy(DriverError):
    errno = errno.EBUSY


class NotSupported(DriverError):
    errno = errno.EOPNOTSUPP


class InvalidArgument(DriverError):
    errno = errno.EINVAL


class OwnershipError(DriverError):
    """The VF belongs to another attachment (e.g. a late release by a stale owner)."""


class TransientError(DriverError):
    """Worth retrying with backoff (EAGAIN, EBUSY while a VF resets, MAC set races)."""


_ERRNO_TO_ERROR: dict[int, type[DriverError]] = {
    errno.ENODEV: InterfaceNotFound,
    errno.ENOENT: InterfaceNotFound,
    errno.EEXIST: AlreadyExists,
    errno.EBUSY: DeviceBusy,
    errno.EOPNOTSUPP: NotSupported,
    errno.EINVAL: InvalidArgument,
    errno.ERANGE: InvalidArgument,
    errno.EAGAIN: TransientError,
}


def error_from_errno(code: int, message: str) -> DriverError:
    """Map a kernel errno (netlink or sysfs write) to the domain exception."""
    exc = _ERRNO_TO_ERROR.get(abs(code), DriverError)(f"{message}: {os.strerror(abs(code))}")
    exc.errno = abs(code)
    return exc


# --- data -------------------------------------------------------------------------


@dataclass(frozen=True)
class VfConfig:
    """What can be programmed on a VF from its PF (`ip link set <pf> vf N ...`).

    `vlan=0` means untagged; `max_tx_rate=0` means unlimited (Mbit/s, like iproute2).
    """

    mac: str = "00:00:00:00:00:00"
    vlan: int = 0
    spoofchk: bool = True
    trust: bool = False
    link_state: str = "auto"
    max_tx_rate: int = 0

    def __post_init__(self) -> None:
        mac = self.mac.lower()
        if not _MAC_RE.match(mac):
            raise InvalidArgument(f"bad MAC address {self.mac!r}")
        object.__setattr__(self, "mac", mac)
        if not 0 <= int(self.vlan) <= 4094:
            raise InvalidArgument(f"VLAN {self.vlan} outside 0-4094")
        if self.link_state not in LINK_STATES:
            raise InvalidArgument(f"link_state must be one of {LINK_STATES}")
        if int(self.max_tx_rate) < 0:
            raise InvalidArgument("max_tx_rate must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VfConfig:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def diff(self, current: VfConfig) -> dict[str, Any]:
        """The fields of self that differ from `current` (what must be written)."""
        mine, theirs = self.to_dict(), current.to_dict()
        return {k: v for k, v in mine.items() if theirs[k] != v}

    def with_(self, **changes: Any) -> VfConfig:
        return replace(self, **changes)


@dataclass
class VfInfo:
    pf: str
    index: int
    pci_address: str
    netdev: str | None
    config: VfConfig | None = None
    owner: str | None = None
    # Where the VF netdev lives while owned (the instance's namespace and ifname).
    netns: str | None = None
    ifname: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["config"] = self.config.to_dict() if self.config else None
        return data


@dataclass
class PfInfo:
    name: str
    pci_address: str
    physnet: str
    total_vfs: int
    num_vfs: int
    vfs: list[VfInfo] = field(default_factory=list)
    # Optional knobs the PF's driver implements, as probed on the kernel: `link_state`,
    # `min_tx_rate`, `vlan_8021ad` -> bool (igb: all False). Empty until a VF exists.
    capabilities: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["vfs"] = [vf.to_dict() for vf in self.vfs]
        return data


# --- the manager interface ----------------------------------------------------------


@runtime_checkable
class VfDriver(Protocol):
    """Claim, configure, plug and release VFs on one node, guarded by owner ids.

    `owner` is the attachment id. Ownership and each VF's original state are persisted
    so a restarted agent still knows what it handed out and how to restore it.
    """

    def discover(self) -> list[PfInfo]:
        """PFs from the physnet mapping, with their VFs (excluded VFs left out)."""
        ...

    def ensure_numvfs(self, pf: str, n: int) -> None:
        """Make the PF expose n VFs (0->N or N->0 only; DeviceBusy if VFs are owned)."""
        ...

    def save_original_state(self, pf: str, index: int) -> VfConfig:
        """Remember the VF's current config once; return what is saved."""
        ...

    def setup_vf(
        self, pf: str, index: int, owner: str, config: VfConfig, netns: str, ifname: str
    ) -> VfInfo:
        """Claim, configure and plug the VF into netns as ifname (idempotent per owner)."""
        ...

    def apply_vf_config(self, pf: str, index: int, owner: str, config: VfConfig) -> VfInfo:
        """Re-program an owned VF (drift repair, MAC/VLAN change)."""
        ...

    def release_vf(self, pf: str, index: int, owner: str) -> bool:
        """Unplug, restore the original state, forget the owner.

        Returns False when the VF was not owned (nothing to do); raises OwnershipError
        when another attachment owns it.
        """
        ...

    def vf_state(self, pf: str, index: int) -> VfInfo: ...

    def owners(self) -> dict[tuple[str, int], str]: ...
