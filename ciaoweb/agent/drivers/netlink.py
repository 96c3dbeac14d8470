"""The netlink seam: program a VF through its PF and move its netdev between namespaces.

`VfNetlink` is the one interface the manager talks to. `PyrouteNetlink` implements it
for real NICs with pyroute2 (`ip link set <pf> vf N ...` and `ip link set ... netns`);
the simulator implements it over its own API (see `sim.py`); tests use an honest fake.
Implementations raise only domain exceptions from `base`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterator
from typing import Any, Protocol

from ..metrics import netlink_error
from .base import InterfaceNotFound, TransientError, VfConfig, error_from_errno

# IFLA_VF_LINK_STATE_{AUTO,ENABLE,DISABLE} from linux/if_link.h
LINK_STATE_TO_KERNEL = {"auto": 0, "enable": 1, "disable": 2}
LINK_STATE_FROM_KERNEL = {v: k for k, v in LINK_STATE_TO_KERNEL.items()}


class VfNetlink(Protocol):
    def set_vf(self, pf: str, index: int, **cfg: Any) -> None:
        """Write only the given VfConfig fields (mac, vlan, spoofchk, ...)."""
        ...

    def get_vf(self, pf: str, index: int) -> VfConfig: ...

    def move_to_netns(
        self, pf: str, index: int, netdev: str, netns: str, ifname: str, mac: str
    ) -> None:
        """Move the VF netdev into netns, rename it ifname, give it mac, set it up."""
        ...

    def move_back(self, pf: str, index: int, netdev: str, netns: str, ifname: str) -> None:
        """Bring the VF home under its original name (InterfaceNotFound if it is gone)."""
        ...

    def is_plugged(self, pf: str, index: int, netns: str, ifname: str) -> bool:
        """Whether the VF is still present in netns as ifname."""
        ...

    def netdev_mac(self, pf: str, index: int, netdev: str, netns: str | None) -> str | None:
        """The MAC the VF netdev uses (not the PF's admin MAC); None if it is not there."""
        ...

    def reset_netdev(self, pf: str, index: int, netdev: str, netns: str | None) -> None:
        """Down/up the VF netdev where it is: igbvf re-reads its admin MAC on the reset
        that goes with it (a PF-side MAC change is not taken while the netdev runs)."""
        ...

    def vf_capabilities(self, pf: str, index: int) -> dict[str, bool]:
        """Probe which optional knobs the PF's driver implements, on an unowned VF,
        leaving its config as it was: `link_state`, `min_tx_rate`, `vlan_8021ad`."""
        ...


# What a PF may not implement (igb: link_state EOPNOTSUPP, min_tx_rate EINVAL, 802.1ad
# EPROTONOSUPPORT). Networks that need one must go to PFs that report it.
OPTIONAL_KNOBS = ("link_state", "min_tx_rate", "vlan_8021ad")
ETH_P_8021Q, ETH_P_8021AD = 0x8100, 0x88A8


def _raise_domain(exc: Exception, what: str, mac_write: bool = False) -> None:
    from pyroute2 import NetlinkError

    if isinstance(exc, NetlinkError):
        code = exc.code
        netlink_error(code)  # ciao_agent_netlink_errors_total{error}
        # Setting a VF MAC answers EBUSY/EAGAIN on several drivers while the VF resets.
        if mac_write and code in (errno.EBUSY, errno.EAGAIN):
            raise TransientError(f"{what}: {os.strerror(code)}") from exc
        raise error_from_errno(code, what) from exc
    if isinstance(exc, FileNotFoundError):  # /var/run/netns/<ns> missing
        netlink_error(errno.ENOENT)
        raise InterfaceNotFound(f"{what}: {exc}") from exc
    raise exc


class PyrouteNetlink:
    """Real NICs through pyroute2's IPRoute (one short-lived socket per call)."""

    @contextlib.contextmanager
    def _ipr(self, netns: str | None = None) -> Iterator[Any]:
        try:
            ipr = netns_socket(netns)
        except Exception as exc:  # noqa: BLE001 - mapped to domain errors
            _raise_domain(exc, f"open netlink in {netns or 'host'}")
        try:
            yield ipr
        finally:
            ipr.close()

    @staticmethod
    def _index(ipr: Any, name: str) -> int:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise InterfaceNotFound(f"no netdev {name!r}")
        return found[0]

    def set_vf(self, pf: str, index: int, **cfg: Any) -> None:
        if not cfg:
            return
        spec: dict[str, Any] = {"vf": index}
        for key, value in cfg.items():
            if key == "max_tx_rate":
                spec["rate"] = {"min_tx_rate": 0, "max_tx_rate": int(value)}
            elif key == "link_state":
                spec["link_state"] = LINK_STATE_TO_KERNEL[value]
            elif key in ("spoofchk", "trust"):
                spec[key] = int(bool(value))
            elif key in ("mac", "vlan"):
                spec[key] = value
            else:
                raise ValueError(f"unknown VF attribute {key!r}")
        what = f"{pf} vf {index} set {'/'.join(sorted(cfg))}"
        with self._ipr() as ipr:
            pf_index = self._index(ipr, pf)
            try:
                ipr.link("set", index=pf_index, vf=spec)
            except Exception as exc:  # noqa: BLE001
                _raise_domain(exc, what, mac_write="mac" in cfg)

    def get_vf(self, pf: str, index: int) -> VfConfig:
        with self._ipr() as ipr:
            pf_index = self._index(ipr, pf)
            try:
                (msg,) = ipr.link("get", index=pf_index, ext_mask=1)  # RTEXT_FILTER_VF
            except Exception as exc:  # noqa: BLE001
                _raise_domain(exc, f"{pf} get vf info")
        vflist = msg.get_attr("IFLA_VFINFO_LIST")
        for info in vflist.get_attrs("IFLA_VF_INFO") if vflist else []:
            mac = info.get_attr("IFLA_VF_MAC")
            if mac is None or mac["vf"] != index:
                continue
            return _config_from_vfinfo(info)
        raise InterfaceNotFound(f"{pf} has no VF {index}")

    def move_to_netns(
        self, pf: str, index: int, netdev: str, netns: str, ifname: str, mac: str
    ) -> None:
        """Under a name of its own while it moves (like sriov-cni): igbvf netdevs are
        ethN in the host namespace, and the instance may have an eth0 already. The move
        and the rename to `ifname` are one request: the kernel does both under its rtnl
        lock, so nothing in the instance (a guest that brings every new link up at once)
        can bring it up in between, which would make the rename fail with EBUSY."""
        transit = transit_name(pf, index)
        with self._ipr() as ipr:
            idx = self._index(ipr, netdev)
            try:
                ipr.link("set", index=idx, state="down")
                ipr.link("set", index=idx, ifname=transit)
                ipr.link("set", index=idx, net_ns_fd=netns, ifname=ifname)
            except Exception as exc:  # noqa: BLE001
                _raise_domain(exc, f"move {netdev} to {netns} as {ifname}")
        with self._ipr(netns) as nsr:
            found = _vf_links(nsr, pf, index, (ifname, transit))
            if not found:
                raise InterfaceNotFound(f"{pf} vf {index}: not in {netns} after the move")
            idx = found[0]
            try:
                if _name(nsr, idx) != ifname:  # a rename of a link that is up is EBUSY
                    nsr.link("set", index=idx, ifname=ifname)
                # The manager made the VF driver take the admin MAC already; writing it
                # again from the VF side is refused by igb for an untrusted VF.
                if _address(nsr, idx) != mac.lower():
                    nsr.link("set", index=idx, address=mac)
                nsr.link("set", index=idx, state="up")
            except Exception as exc:  # noqa: BLE001
                _raise_domain(exc, f"rename {netdev} to {ifname} in {netns}")

    def move_back(self, pf: str, index: int, netdev: str, netns: str, ifname: str) -> None:
        """Home under the transit name, then its old name if nobody took it meanwhile
        (the manager finds VF netdevs by PCI address, not by name)."""
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        transit = transit_name(pf, index)
        try:
            with self._ipr(netns) as nsr:
                found = _vf_links(nsr, pf, index, (ifname, netdev, transit))
                if not found:
                    raise InterfaceNotFound(f"{ifname}/{netdev} not in {netns}")
                try:
                    # One request, as for the move in: the kernel takes the netdev down
                    # to move it and renames it at home, so a guest that brings links
                    # up cannot make the rename EBUSY in between.
                    nsr.link("set", index=found[0], net_ns_fd=home, ifname=transit)
                except Exception as exc:  # noqa: BLE001
                    _raise_domain(exc, f"move {ifname} back from {netns}")
        finally:
            os.close(home)
        with self._ipr() as ipr, contextlib.suppress(Exception):
            ipr.link("set", index=self._index(ipr, transit), ifname=netdev)

    def is_plugged(self, pf: str, index: int, netns: str, ifname: str) -> bool:
        try:
            with self._ipr(netns) as nsr:
                return bool(nsr.link_lookup(ifname=ifname))
        except InterfaceNotFound:
            return False

    def netdev_mac(self, pf: str, index: int, netdev: str, netns: str | None) -> str | None:
        try:
            with self._ipr(netns) as ipr:
                found = ipr.link_lookup(ifname=netdev)
                return _address(ipr, found[0]) if found else None
        except InterfaceNotFound:
            return None

    def reset_netdev(self, pf: str, index: int, netdev: str, netns: str | None) -> None:
        with self._ipr(netns) as ipr:
            idx = self._index(ipr, netdev)
            try:
                (msg,) = ipr.link("get", index=idx)
                was_up = bool(msg["flags"] & 1)  # IFF_UP
                if not was_up:  # the reset comes with going down: up first
                    ipr.link("set", index=idx, state="up")
                ipr.link("set", index=idx, state="down")
                if was_up:
                    ipr.link("set", index=idx, state="up")
            except Exception as exc:  # noqa: BLE001
                _raise_domain(exc, f"down/up {netdev} in {netns or 'host'}")

    def vf_capabilities(self, pf: str, index: int) -> dict[str, bool]:
        from pyroute2 import NetlinkError

        current = self.get_vf(pf, index)
        probes: dict[str, list[dict[str, Any]]] = {
            # Each: the probe write, then what puts the VF back.
            "link_state": [{"link_state": LINK_STATE_TO_KERNEL[current.link_state]}],
            "min_tx_rate": [
                {"rate": {"min_tx_rate": 1, "max_tx_rate": current.max_tx_rate}},
                {"rate": {"min_tx_rate": 0, "max_tx_rate": current.max_tx_rate}},
            ],
            "vlan_8021ad": [
                {"vlan": [{"vlan": current.vlan, "qos": 0, "proto": ETH_P_8021AD}]},
                {"vlan": [{"vlan": current.vlan, "qos": 0, "proto": ETH_P_8021Q}]},
            ],
        }
        found: dict[str, bool] = {}
        with self._ipr() as ipr:
            pf_index = self._index(ipr, pf)
            for knob, writes in probes.items():
                try:
                    ipr.link("set", index=pf_index, vf={"vf": index, **writes[0]})
                except NetlinkError as exc:
                    if exc.code not in (errno.EOPNOTSUPP, errno.EINVAL, errno.EPROTONOSUPPORT):
                        _raise_domain(exc, f"{pf} vf {index} probe {knob}")
                    found[knob] = False
                    continue
                found[knob] = True
                for undo in writes[1:]:
                    try:
                        ipr.link("set", index=pf_index, vf={"vf": index, **undo})
                    except Exception as exc:  # noqa: BLE001
                        _raise_domain(exc, f"{pf} vf {index} undo probe {knob}")
        return found


def netns_socket(netns: str | None) -> Any:
    """An IPRoute whose socket lives in `netns`, made in this thread without a fork.

    pyroute2's `IPRoute(netns=...)` forks a child per socket to enter the namespace; in a
    Celery prefork worker under a slow CPU (TCG) the child was SIGTERMed on a timeout,
    ran the pool's inherited handlers, and the pool then killed the worker mid-task.
    Entering the namespace in this thread only (setns is per thread), opening the
    socket, and coming back does the same with no child. flags=0: a missing namespace
    is an error, never created by accident."""
    from pyroute2 import IPRoute
    from pyroute2 import netns as pyroute_netns

    if netns is None:
        return IPRoute()
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        pyroute_netns.setns(netns, flags=0, fork=False)
        try:
            return IPRoute()
        finally:
            pyroute_netns.setns(home, flags=0)
    finally:
        os.close(home)


def transit_name(pf: str, index: int) -> str:
    """A name no other link has while a VF moves between namespaces (<= 15 chars)."""
    return "ciaovf" + hashlib.sha1(f"{pf}/{index}".encode()).hexdigest()[:8]


def _vf_links(ipr: Any, pf: str, index: int, names: tuple[str, ...]) -> list[int]:
    """Links with one of `names` that are this VF: after a failed rename the VF sits in
    the namespace under its own name, and `ifname` may be another VF's (a name clash)."""
    pci = os.path.basename(os.path.realpath(f"/sys/class/net/{pf}/device/virtfn{index}"))
    found = []
    for name in names:
        for idx in ipr.link_lookup(ifname=name):
            (msg,) = ipr.link("get", index=idx)
            parent = msg.get_attr("IFLA_PARENT_DEV_NAME")  # the PCI device (Linux >= 5.15)
            if parent is None or parent == pci:
                found.append(idx)
    return found


def _name(ipr: Any, idx: int) -> str | None:
    (msg,) = ipr.link("get", index=idx)
    return msg.get_attr("IFLA_IFNAME")


def _address(ipr: Any, idx: int) -> str | None:
    (msg,) = ipr.link("get", index=idx)
    address = msg.get_attr("IFLA_ADDRESS")
    return address.lower() if address else None


def _config_from_vfinfo(info: Any) -> VfConfig:
    def field(attr: str, key: str, default: Any) -> Any:
        nla = info.get_attr(attr)
        return default if nla is None else nla[key]

    rate = info.get_attr("IFLA_VF_RATE")
    max_rate = rate["max_tx_rate"] if rate is not None else field("IFLA_VF_TX_RATE", "tx_rate", 0)
    return VfConfig(
        mac=field("IFLA_VF_MAC", "mac", "00:00:00:00:00:00"),
        vlan=field("IFLA_VF_VLAN", "vlan", 0),
        # Drivers that do not report a knob get the kernel's default for it.
        spoofchk=bool(field("IFLA_VF_SPOOFCHK", "spoofchk", 1)),
        trust=bool(field("IFLA_VF_TRUST", "trust", 0)),
        link_state=LINK_STATE_FROM_KERNEL.get(field("IFLA_VF_LINK_STATE", "link_state", 0), "auto"),
        max_tx_rate=max_rate,
    )
