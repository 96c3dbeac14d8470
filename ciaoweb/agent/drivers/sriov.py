"""The VF manager: one implementation of `VfDriver` over a sysfs seam and a netlink seam.

Real NICs use `Sysfs("/")` + `PyrouteNetlink()`; the simulator plugs in its fake
`/sys` and its own netlink seam (see `sim.py`); tests plug in a temp tree and a fake.
All the rules (ownership, original state, rollback, numvfs 0<->N) live here once.

What the real igb/igbvf pair taught us (shared/realnic-probe, kept by tests/realnic):
- A MAC the PF writes while the VF driver runs is not used by the VF netdev until the VF
  driver resets (netdev down/up, or a rebind); traffic fails meanwhile. So VFs we create
  come up unbound (`sriov_drivers_autoprobe=0`), are programmed, then bound through
  `driver_override`: the driver starts with the admin MAC. A VF found bound is rebound
  while its netdev is in the host namespace, or reset by down/up where it is.
- Rebinding a VF whose netdev sits in an instance's namespace makes the new netdev appear
  in the host namespace: the instance loses its interface. Never done (`_rebind` refuses).
- Knobs a PF's driver lacks (igb: link_state, min_tx_rate, 802.1ad) are capabilities
  the PF reports (`PfInfo.capabilities`); a config that needs one is refused before any
  write (`NotSupported`).
- Release restores the saved config and binding, then reads the config back from the
  kernel: a restore that did not take leaves the record (phase failed) and raises. A VF
  that was unbound is unbound before its config is restored: igbvf left bound without
  an admin MAC registers a random one with the PF, and the PF keeps it.
- igbvf netdevs are ethN in the host namespace, and an instance has an eth0: a VF moves
  between namespaces under a transit name of its own (`netlink.transit_name`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .base import (
    DeviceBusy,
    DriverError,
    InterfaceNotFound,
    InvalidArgument,
    NotSupported,
    OwnershipError,
    PfInfo,
    VfConfig,
    VfInfo,
)
from .netlink import PyrouteNetlink, VfNetlink
from .state import CLAIMING, FAILED, READY, StateStore, parse_vf_key, vf_key
from .sysfs import Sysfs

log = logging.getLogger(__name__)

DEFAULT_PHYSNET = "default"
# Order matters: VLAN first so a VF never carries the new MAC on the old VLAN.
_PROGRAM_ORDER = ("vlan", "mac", "spoofchk", "trust", "link_state", "max_tx_rate")
_OWNER_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_NETNS_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
ZERO_MAC = "00:00:00:00:00:00"
# The VF driver of each PF driver, for binding VFs that came up without one.
VF_DRIVERS = {
    "igb": "igbvf",
    "ixgbe": "ixgbevf",
    "i40e": "iavf",
    "ice": "iavf",
    "bnxt_en": "bnxt_en",
    "mlx5_core": "mlx5_core",
    "qede": "qede",
}
NETDEV_WAIT = 5.0  # seconds for a bound VF's netdev to register
CARRIER_WAIT = 15.0  # seconds for a PF's link to come back after enabling SR-IOV


def parse_device_mappings(text: str) -> dict[str, list[str]]:
    """Neutron's `physical_device_mappings`: "physnet1:ens1f0,physnet1:ens1f1,physnet2:ens2"."""
    mapping: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        physnet, sep, pf = item.partition(":")
        if not sep or not physnet or not pf:
            raise InvalidArgument(f"bad device mapping {item!r} (want physnet:pf)")
        mapping.setdefault(physnet, []).append(pf)
    return mapping


def parse_exclude_devices(text: str) -> dict[str, set[str | int]]:
    """Neutron's `exclude_devices`: "ens1f0:0000:07:00.2;0000:07:00.3,ens2:5" (PCI or index)."""
    excluded: dict[str, set[str | int]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        pf, sep, vfs = item.partition(":")
        if not sep:
            raise InvalidArgument(f"bad exclude entry {item!r} (want pf:vf;vf)")
        for vf in filter(None, (v.strip() for v in vfs.split(";"))):
            excluded.setdefault(pf, set()).add(int(vf) if vf.isdigit() else vf.lower())
    return excluded


class SriovDriver:
    """`VfDriver` for one node. Safe to use from several processes at once (file lock)."""

    def __init__(
        self,
        *,
        node: str,
        state_dir: str | os.PathLike[str],
        physnets: Mapping[str, Sequence[str]] | None = None,
        exclude: Mapping[str, Iterable[str | int]] | None = None,
        sysfs: Sysfs | None = None,
        netlink: VfNetlink | None = None,
        vf_drivers: Mapping[str, str] | None = None,
    ) -> None:
        self.node = node
        self._vf_drivers = {**VF_DRIVERS, **(vf_drivers or {})}
        self.sysfs = sysfs or Sysfs("/")
        self.netlink: VfNetlink = netlink or PyrouteNetlink()
        self.store = StateStore(state_dir, node)
        self._physnets = {k: list(v) for k, v in (physnets or {}).items()}
        self._exclude = {pf: {_norm(v) for v in vfs} for pf, vfs in (exclude or {}).items()}

    # --- discovery ----------------------------------------------------------------

    def physnet_of(self, pf: str) -> str:
        """The physnet a PF serves; InvalidArgument for a PF this agent must not touch."""
        if not self._physnets:
            if self.sysfs.has_sriov(pf):
                return DEFAULT_PHYSNET
        for physnet, pfs in self._physnets.items():
            if pf in pfs:
                return physnet
        raise InvalidArgument(f"PF {pf!r} is not in this node's physnet mapping")

    def _managed_pfs(self) -> list[tuple[str, str]]:
        if not self._physnets:
            return [(DEFAULT_PHYSNET, pf) for pf in self.sysfs.pf_names()]
        return [(physnet, pf) for physnet, pfs in self._physnets.items() for pf in pfs]

    def is_excluded(self, pf: str, index: int, pci_address: str) -> bool:
        excluded = self._exclude.get(pf, set())
        return index in excluded or pci_address.lower() in excluded

    def discover(self) -> list[PfInfo]:
        records = self.store.read()["vfs"]
        found: list[PfInfo] = []
        for physnet, pf in self._managed_pfs():
            if not self.sysfs.has_sriov(pf):
                log.warning(
                    "PF %s (physnet %s) missing or not SR-IOV capable; skipped", pf, physnet
                )
                continue
            info = PfInfo(
                name=pf,
                pci_address=self.sysfs.pf_pci_address(pf),
                physnet=physnet,
                total_vfs=self.sysfs.total_vfs(pf),
                num_vfs=self.sysfs.num_vfs(pf),
                capabilities=self.capabilities(pf),
            )
            for index in self.sysfs.vf_indexes(pf):
                pci = self.sysfs.vf_pci_address(pf, index)
                if self.is_excluded(pf, index, pci):
                    continue
                info.vfs.append(self._vf_info(pf, index, pci, records.get(vf_key(pf, index))))
            found.append(info)
        return found

    def capabilities(self, pf: str) -> dict[str, bool]:
        """The PF's optional knobs, probed once on an unowned VF and remembered (per PF
        PCI address) in the state file; {} while the PF has no VF to probe on."""
        pci = self.sysfs.pf_pci_address(pf)
        known = self.store.read().get("pfs", {}).get(pf, {})
        if known.get("pci") == pci and known.get("capabilities"):
            return dict(known["capabilities"])
        with self.store.transaction() as state:
            owned = {k for k, rec in state["vfs"].items() if rec.get("owner")}
            free = [i for i in self.sysfs.vf_indexes(pf) if vf_key(pf, i) not in owned]
            if not free:
                return {}
            found = self.netlink.vf_capabilities(pf, free[-1])
            state.setdefault("pfs", {})[pf] = {"pci": pci, "capabilities": found}
            return dict(found)

    def _check_supported(self, pf: str, config: VfConfig) -> None:
        caps = self.capabilities(pf)
        if config.link_state != "auto" and caps.get("link_state") is False:
            raise NotSupported(
                f"{pf} ({self.sysfs.pf_driver(pf) or 'its driver'}) does not support "
                f"link_state {config.link_state!r}: put the network on a PF that reports "
                "the link_state capability"
            )

    # --- numvfs -------------------------------------------------------------------

    def ensure_numvfs(self, pf: str, n: int) -> None:
        self.physnet_of(pf)
        total = self.sysfs.total_vfs(pf)
        if not 0 <= n <= total:
            raise InvalidArgument(f"{pf}: {n} VFs requested, the PF supports 0..{total}")
        with self.store.transaction() as state:
            current = self.sysfs.num_vfs(pf)
            if current == n:
                return
            owned = [
                k for k, rec in state["vfs"].items() if k.startswith(f"{pf}/") and rec.get("owner")
            ]
            if owned:
                raise DeviceBusy(
                    f"{pf}: cannot change numvfs, VFs in use: {', '.join(sorted(owned))}"
                )
            # The kernel only accepts 0->N and N->0.
            if current:
                self.sysfs.write_num_vfs(pf, 0)
            for key in [k for k in state["vfs"] if k.startswith(f"{pf}/")]:
                del state["vfs"][key]  # saved states of VFs that no longer exist
            if n:
                # Our VFs come up unbound: setup programs them, then binds (see top).
                if self._vf_driver_for(pf) and self.sysfs.autoprobe(pf):
                    self.sysfs.set_autoprobe(pf, False)
                self.sysfs.write_num_vfs(pf, n)
                if self.sysfs.admin_up(pf) and self.sysfs.carrier(pf) is not None:
                    # igb resets the PF to enable SR-IOV: until its link is back, rate
                    # writes are EINVAL and VFs pass no traffic.
                    self._wait_carrier(pf)

    # --- per-VF operations --------------------------------------------------------

    def save_original_state(self, pf: str, index: int) -> VfConfig:
        self._usable_vf(pf, index)
        with self.store.transaction() as state:
            rec = state["vfs"].setdefault(vf_key(pf, index), {})
            if "original" not in rec:
                rec["original"] = self.netlink.get_vf(pf, index).to_dict()
            return VfConfig.from_dict(rec["original"])

    def setup_vf(
        self, pf: str, index: int, owner: str, config: VfConfig, netns: str, ifname: str
    ) -> VfInfo:
        _check_name("owner", owner, _OWNER_RE)
        _check_name("netns", netns, _NETNS_RE)
        _check_name("ifname", ifname, _IFNAME_RE)
        pci = self._usable_vf(pf, index)
        self._check_supported(pf, config)
        with self.store.transaction() as state:
            key = vf_key(pf, index)
            rec = state["vfs"].get(key) or {}
            _check_not_foreign(rec, owner, pf, index)
            if rec.get("owner") == owner and rec.get("phase") == READY:
                if (rec.get("netns"), rec.get("ifname")) == (netns, ifname) and (
                    self.netlink.is_plugged(pf, index, netns, ifname)
                ):
                    self._program(pf, index, config)  # repairs drift, no-op otherwise
                    self._adopt_in_place(pf, index, config, rec)
                    rec["config"] = config.to_dict()
                    return self._vf_info(pf, index, pci, rec)
                # Same owner, new place (or lost its namespace): bring it home first.
                self._unplug(pf, index, rec)
            elif rec.get("owner") == owner and rec.get("netns"):
                # Our own set-up cut short after the move (the agent was killed before
                # the record said READY): the netdev may sit in the namespace under its
                # transit name or its ifname. Home first, then the set-up again.
                self._unplug(pf, index, rec)
            if "original" not in rec:
                rec["original"] = self.netlink.get_vf(pf, index).to_dict()
                rec["original_driver"] = self.sysfs.vf_driver(pf, index)
            # Claim before touching hardware so a crash leaves a record to clean up.
            rec.update(
                owner=owner,
                phase=CLAIMING,
                netdev=rec.get("netdev") or self.sysfs.vf_netdev(pf, index),
                netns=netns,
                ifname=ifname,
                config=config.to_dict(),
            )
            state["vfs"][key] = rec
            self.store.save(state)
            try:
                self._program(pf, index, config)
                current_netdev = self._activate(pf, index, config)
                rec["netdev"] = current_netdev
                self.netlink.move_to_netns(pf, index, current_netdev, netns, ifname, config.mac)
            except BaseException:
                self._rollback_setup(state, pf, index, rec)
                raise
            rec["phase"] = READY
            return self._vf_info(pf, index, pci, rec)

    def apply_vf_config(self, pf: str, index: int, owner: str, config: VfConfig) -> VfInfo:
        pci = self._usable_vf(pf, index)
        self._check_supported(pf, config)  # outside the transaction: it may probe
        with self.store.transaction() as state:
            rec = state["vfs"].get(vf_key(pf, index)) or {}
            if rec.get("owner") != owner:
                raise OwnershipError(
                    f"{pf} VF {index} is owned by {rec.get('owner')!r}, not {owner!r}"
                )
            previous = VfConfig.from_dict(rec.get("config") or rec["original"])
            try:
                self._program(pf, index, config)
                if rec.get("netns"):
                    self._adopt_in_place(pf, index, config, rec)
                else:
                    rec["netdev"] = self._activate(pf, index, config)
            except BaseException:
                with _logged(f"restore {pf} VF {index} after failed apply"):
                    self._program(pf, index, previous)
                raise
            rec["config"] = config.to_dict()
            return self._vf_info(pf, index, pci, rec)

    def release_vf(self, pf: str, index: int, owner: str) -> bool:
        with self.store.transaction() as state:
            key = vf_key(pf, index)
            rec = state["vfs"].get(key)
            if not rec or not rec.get("owner"):
                return False  # idempotent: nothing of ours to release
            if rec["owner"] != owner:
                raise OwnershipError(
                    f"{pf} VF {index} now belongs to {rec['owner']!r}; release by {owner!r} refused"
                )
            self._unplug(pf, index, rec)
            self.store.save(state)
            original = VfConfig.from_dict(rec["original"])
            try:
                if rec.get("original_driver", "") is None:
                    # Unbind first: igbvf left bound without an admin MAC registers a
                    # random one with the PF, which would stay after the unbind.
                    self._restore_binding(pf, index, rec)
                    self._program(pf, index, original)
                else:
                    self._program(pf, index, original)
                    self._restore_binding(pf, index, rec)
                self._verify(pf, index, original)
            except DriverError:
                rec["phase"] = FAILED  # the owner's retry or the reconciler finishes it
                raise
            del state["vfs"][key]
            return True

    def vf_state(self, pf: str, index: int) -> VfInfo:
        pci = self._usable_vf(pf, index)
        rec = self.store.read()["vfs"].get(vf_key(pf, index))
        return self._vf_info(pf, index, pci, rec)

    def owners(self) -> dict[tuple[str, int], str]:
        return {
            parse_vf_key(key): rec["owner"]
            for key, rec in self.store.read()["vfs"].items()
            if rec.get("owner")
        }

    # --- internals ----------------------------------------------------------------

    def _usable_vf(self, pf: str, index: int) -> str:
        """PCI address of a VF this driver may hand out; raises for anything else."""
        self.physnet_of(pf)
        if not isinstance(index, int) or index < 0:
            raise InvalidArgument(f"bad VF index {index!r}")
        pci = self.sysfs.vf_pci_address(pf, index)
        if self.is_excluded(pf, index, pci):
            raise InvalidArgument(f"{pf} VF {index} ({pci}) is excluded from use")
        return pci

    def _program(self, pf: str, index: int, config: VfConfig) -> None:
        """Write only what differs, one knob at a time, in a safe order."""
        changes = config.diff(self.netlink.get_vf(pf, index))
        for knob in _PROGRAM_ORDER:
            if knob in changes:
                self.netlink.set_vf(pf, index, **{knob: changes[knob]})

    def _vf_driver_for(self, pf: str) -> str | None:
        return self._vf_drivers.get(self.sysfs.pf_driver(pf) or "")

    def _activate(self, pf: str, index: int, config: VfConfig) -> str:
        """Make the VF netdev exist in the host namespace using the admin MAC just
        programmed: bind an unbound VF, rebind one whose netdev kept an old MAC."""
        if self.sysfs.vf_driver(pf, index) is None:
            driver = self._vf_driver_for(pf)
            if driver is None:
                raise InterfaceNotFound(
                    f"{pf} VF {index} has no driver bound and none is known for PF driver "
                    f"{self.sysfs.pf_driver(pf)!r}"
                )
            self.sysfs.bind_vf(pf, index, driver)
            netdev = self._wait_netdev(pf, index)
        else:
            netdev = self.sysfs.vf_netdev(pf, index)
            if netdev is None:
                raise InterfaceNotFound(f"{pf} VF {index}: its netdev is not in the host namespace")
            if self._uses_mac(pf, index, netdev, None, config.mac):
                return netdev  # already on the admin MAC: asked once, not twice
            self._rebind(pf, index)
            netdev = self._wait_netdev(pf, index)
        if not self._uses_mac(pf, index, netdev, None, config.mac):
            raise DriverError(
                f"{pf} VF {index}: netdev {netdev} uses "
                f"{self.netlink.netdev_mac(pf, index, netdev, None)}, not the admin MAC "
                f"{config.mac}"
            )
        return netdev

    def _adopt_in_place(self, pf: str, index: int, config: VfConfig, rec: dict[str, Any]) -> None:
        """A plugged VF whose netdev kept an old MAC: down/up where it is (in the
        instance's namespace). Never a rebind: the new netdev would land in ours."""
        netns, ifname = rec.get("netns"), rec.get("ifname") or rec.get("netdev")
        if self._uses_mac(pf, index, ifname, netns, config.mac):
            return
        self.netlink.reset_netdev(pf, index, ifname, netns)
        if not self._uses_mac(pf, index, ifname, netns, config.mac):
            raise DriverError(
                f"{pf} VF {index}: {ifname} in {netns} did not take the admin MAC {config.mac}"
            )

    def _uses_mac(self, pf: str, index: int, netdev: str, netns: str | None, mac: str) -> bool:
        if mac == ZERO_MAC:
            return True  # no admin MAC: the VF driver picks its own
        return self.netlink.netdev_mac(pf, index, netdev, netns) == mac

    def _rebind(self, pf: str, index: int) -> None:
        """Unbind and bind the VF's driver again (it re-reads the admin config)."""
        driver = self.sysfs.vf_driver(pf, index)
        if driver is None:
            return
        if self.sysfs.vf_netdev(pf, index) is None:
            raise DeviceBusy(
                f"{pf} VF {index}: its netdev is in another namespace; a rebind would move "
                "it to the host namespace, refused"
            )
        self.sysfs.unbind_vf(pf, index)
        self.sysfs.bind_vf(pf, index, driver)

    def _wait_carrier(self, pf: str) -> None:
        deadline = time.monotonic() + CARRIER_WAIT
        while not self.sysfs.carrier(pf):
            if time.monotonic() > deadline:
                log.warning("%s: no carrier %s s after enabling VFs", pf, CARRIER_WAIT)
                return
            time.sleep(0.05)

    def _wait_netdev(self, pf: str, index: int) -> str:
        deadline = time.monotonic() + NETDEV_WAIT
        while (netdev := self.sysfs.vf_netdev(pf, index)) is None:
            if time.monotonic() > deadline:
                raise InterfaceNotFound(f"{pf} VF {index}: no netdev {NETDEV_WAIT} s after bind")
            time.sleep(0.01)
        return netdev

    def _restore_binding(self, pf: str, index: int, rec: dict[str, Any]) -> None:
        """Back to how the VF was: unbound if it was, else a fresh netdev (no tenant MAC)."""
        if "original_driver" not in rec:
            return
        if rec["original_driver"] is None:
            self.sysfs.unbind_vf(pf, index)
        elif self.sysfs.vf_driver(pf, index) is None:
            self.sysfs.bind_vf(pf, index, rec["original_driver"])
        elif self.sysfs.vf_netdev(pf, index) is not None:
            config = rec.get("config") or {}
            netdev = self.sysfs.vf_netdev(pf, index)
            if config.get("mac") and self._uses_mac(pf, index, netdev, None, config["mac"]):
                self._rebind(pf, index)
                # igbvf without an admin MAC picks one and registers it with the PF:
                # write the saved config again so `ip link show <pf>` shows it.
                self._program(pf, index, VfConfig.from_dict(rec["original"]))

    def _verify(self, pf: str, index: int, want: VfConfig) -> None:
        """Read the VF's config back from the kernel: what was written must be there."""
        got = self.netlink.get_vf(pf, index)
        if got != want:
            raise DriverError(
                f"{pf} VF {index}: restore did not take, the kernel reports {got.diff(want)} "
                f"where {want.diff(got)} was saved"
            )

    def _unplug(self, pf: str, index: int, rec: dict[str, Any]) -> None:
        if rec.get("netns"):
            try:
                self.netlink.move_back(pf, index, rec["netdev"], rec["netns"], rec["ifname"])
            except InterfaceNotFound:
                # Namespace or netdev already gone (instance deleted, kernel moved it home).
                log.info("%s VF %d: nothing to move back from %s", pf, index, rec["netns"])
        rec["netns"] = rec["ifname"] = None

    def _rollback_setup(
        self, state: dict[str, Any], pf: str, index: int, rec: dict[str, Any]
    ) -> None:
        """Undo a failed setup: VF home, original config, owner forgotten.

        If the undo itself fails the record stays (phase=failed) so a release by the
        same owner or the reconciler can finish the job later.
        """
        try:
            self._unplug(pf, index, rec)
            self._program(pf, index, VfConfig.from_dict(rec["original"]))
            self._restore_binding(pf, index, rec)
        except DriverError as exc:
            log.error("rollback of %s VF %d for %s failed: %s", pf, index, rec["owner"], exc)
            rec["phase"] = FAILED
            return
        del state["vfs"][vf_key(pf, index)]

    def _vf_info(self, pf: str, index: int, pci: str, rec: dict[str, Any] | None) -> VfInfo:
        rec = rec or {}
        try:
            config: VfConfig | None = self.netlink.get_vf(pf, index)
        except DriverError as exc:
            log.warning("cannot read %s VF %d config: %s", pf, index, exc)
            config = None
        return VfInfo(
            pf=pf,
            index=index,
            pci_address=pci,
            netdev=self.sysfs.vf_netdev(pf, index) or rec.get("netdev"),
            config=config,
            owner=rec.get("owner"),
            netns=rec.get("netns"),
            ifname=rec.get("ifname"),
        )


def _norm(vf: str | int) -> str | int:
    return vf if isinstance(vf, int) else vf.strip().lower()


def _check_name(kind: str, value: str, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidArgument(f"bad {kind} {value!r}")


def _check_not_foreign(rec: dict[str, Any], owner: str, pf: str, index: int) -> None:
    if rec.get("owner") not in (None, owner):
        raise OwnershipError(f"{pf} VF {index} is owned by {rec['owner']!r}, not {owner!r}")


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    try:
        yield
    except DriverError as exc:
        log.error("%s failed: %s", what, exc)
