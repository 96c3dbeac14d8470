"""The runner: turns a Topology into namespaces and links, and drives it afterwards.

Division of labour (Mininet-like): :mod:`netns` makes namespaces, :mod:`fabric`
the physical network, :mod:`pf` a PF's embedded switch, :mod:`vf` a VF and its
knobs, :mod:`instances` instance namespaces and the VM guest, :mod:`dhcp` the
underlay DHCP servers; this module only sequences them and keeps the state.

Every public method may be called from several processes at once: mutations run
under the state file's lock (:class:`simulator.state.StateStore`).
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import faults, names, netns, vf
from .clean import clean as clean_sim
from .cmd import Batch, ip, nft
from .dhcp import UnderlayDhcp
from .errors import (
    CommandFailed,
    DeviceBusy,
    InvalidArgument,
    MacSetFailed,
    NotFound,
    NotSupported,
)
from .fabric import Fabric
from .instances import Instance
from .pf import Eswitch
from .state import State, StateStore, pidfile_process
from .sysfs import Sysfs
from .topology import Topology

Progress = Callable[[str], None]


@dataclass
class VfState:
    """What `ip link show <pf>` would say about one VF, plus where its netdev is."""

    mac: str
    vlan: int
    spoofchk: bool
    trust: bool
    link_state: str
    max_tx_rate: int
    netns: str | None
    ifname: str | None
    index: int = 0
    pci_address: str = ""
    netdev: str = ""
    bound: bool = True  # the VF driver is bound (else the VF has no netdev)


def _check_mac(mac: str) -> str:
    mac = mac.lower()
    parts = mac.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise InvalidArgument(f"invalid MAC {mac!r}")
    try:
        first = int(parts[0], 16)
        for p in parts:
            int(p, 16)
    except ValueError:
        raise InvalidArgument(f"invalid MAC {mac!r}") from None
    if first & 1:
        raise InvalidArgument(f"MAC {mac} is multicast")
    return mac


class Simulator:
    """Handle on one simulator (``name``), built by :meth:`up` or found by :meth:`load`."""

    def __init__(self, name: str, base_dir: str | Path | None = None) -> None:
        self.name = names.check_sim_name(name)
        self.state_dir = names.base_dir(base_dir) / name
        self._store = StateStore(self.state_dir)
        self._fabric = Fabric(name)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def up(
        cls,
        topology: Topology,
        name: str = "sim",
        progress: Progress | None = None,
        base_dir: str | Path | None = None,
    ) -> Simulator:
        """Build the whole datapath; on any failure tear down what was built.

        ``Simulator.up(name, topology)`` (name first) is accepted too.
        """
        if isinstance(topology, str) and isinstance(name, Topology):
            topology, name = name, topology
        topology.validate()
        sim = cls(name, base_dir)
        say = progress or (lambda _msg: None)
        if sim._store.exists():
            raise DeviceBusy(f"simulator {name!r} exists; `down` or `clean --name {name}` first")
        leftovers = netns.list_prefixed(names.ns_prefix(name))
        if leftovers:
            raise DeviceBusy(
                f"namespaces of a previous {name!r} remain ({leftovers[0]}, ...); "
                f"run `python -m simulator clean --name {name}`"
            )
        sim._store.init(sim._initial_state(topology))
        t0 = time.monotonic()
        with contextlib.ExitStack() as undo:
            undo.callback(sim._teardown)  # reverse order of creation, from the state
            with sim._store.transaction() as st:
                sim._fabric.create()
                batch = Batch()
                domains = {(u.physnet, u.vlan) for u in topology.underlays}
                domains |= {(pf.physnet, 0) for h in topology.hosts for pf in h.pfs}
                for physnet, vlan in sorted(domains):  # shared: before any host's part
                    sim._ensure_fabric_bridge(st, batch, topology.physnet_index(physnet), vlan)
                batch.run()
                say(f"fabric {sim._fabric.netns} ready")
            for n, host in enumerate(topology.hosts):
                with sim._store.host_transaction(host.name) as st:
                    sim._build_host(st, host.name)
                say(
                    f"host {n + 1}/{len(topology.hosts)} {host.name}: "
                    f"{sum(len(p['vfs']) for p in st['hosts'][host.name]['pfs'].values())} VFs "
                    f"({time.monotonic() - t0:.1f}s)"
                )
            for u in topology.underlays:
                with sim._store.transaction() as st:
                    d = sim._underlay(u.physnet, u.vlan, u.cidr, topology, u.ipv6_cidr)
                    d.start(sim._fabric)
                    st["underlays"][d.key] = {
                        "physnet": u.physnet,
                        "vlan": u.vlan,
                        "cidr": u.cidr,
                        "ipv6_cidr": u.ipv6_cidr,
                        "netns": d.netns,
                        "server_ip": d.addresses()[0],
                        "pidfile": str(d.pidfile),
                        "leasefile": str(d.leasefile),
                    }
                say(f"underlay DHCP {u.physnet}:{u.vlan} {u.cidr} in {d.netns}")
            with sim._store.transaction() as st:
                st["status"] = "up"
            undo.pop_all()
        say(f"up in {time.monotonic() - t0:.2f}s: {topology.total_vfs()} VFs max")
        return sim

    @classmethod
    def load(cls, name: str = "sim", base_dir: str | Path | None = None) -> Simulator:
        sim = cls(name, base_dir)
        if not sim._store.exists():
            raise NotFound(f"no simulator {name!r} under {sim.state_dir.parent}")
        return sim

    def down(self, progress: Progress | None = None) -> None:
        """Tear everything down (reverse order), then sweep by prefix; idempotent."""
        self._teardown(progress)

    def _teardown(self, progress: Progress | None = None) -> None:
        say = progress or (lambda _msg: None)
        try:
            st = self._store.read()
        except NotFound:
            st = None
        if st is not None:
            for inst in list(st.get("instances", {})):
                self._instance(inst).destroy()
                say(f"instance {inst} deleted")
            for key, u in st.get("underlays", {}).items():
                UnderlayDhcp(
                    self.name, u["physnet"], 0, u["vlan"], u["cidr"], self.state_dir
                ).stop()
                say(f"underlay {key} stopped")
            for host in reversed(list(st.get("hosts", {}))):
                netns.delete(names.host_ns(self.name, host))
            say("hosts deleted")
            self._fabric.destroy()
        clean_sim(self.name, self.state_dir.parent)
        say(f"simulator {self.name} down")

    # ------------------------------------------------------------------ building

    def _initial_state(self, topology: Topology) -> State:
        return {
            "name": self.name,
            "status": "building",
            "created": time.time(),
            "topology": topology.to_dict(),
            "fabric": {"netns": self._fabric.netns, "bridges": []},
            "hosts": {},
            "instances": {},
            "underlays": {},
        }

    def _ensure_fabric_bridge(self, st: State, batch: Batch, physnet_index: int, vlan: int) -> None:
        key = f"{physnet_index}:{vlan}"
        if key not in st["fabric"]["bridges"]:
            self._fabric.add_bridge(batch, physnet_index, vlan)
            st["fabric"]["bridges"].append(key)

    def _build_host(self, st: State, host: str) -> None:
        topo = Topology.from_dict(st["topology"])
        spec = topo.host(host)
        index = [h.name for h in topo.hosts].index(host)
        hns = names.host_ns(self.name, host)
        sysfs_root = self.state_dir / "hosts" / host / "sys"
        hst = st["hosts"][host] = {
            "index": index,
            "netns": hns,
            "mgmt_ip": names.mgmt_ip(index),
            "network_node": spec.network_node,
            "down": False,
            "sysfs": str(sysfs_root),
            "pfs": {},
        }
        netns.create(hns)
        batch = Batch()
        port = names.fabric_mgmt_port(index)
        batch.add(
            hns,
            f"link add {names.MGMT_IFNAME} type veth peer name {port} netns {self._fabric.netns}",
            f"addr add {hst['mgmt_ip']}/24 dev {names.MGMT_IFNAME}",
            f"link set {names.MGMT_IFNAME} up",
        )
        self._fabric.attach(batch, port, names.MGMT_BRIDGE)
        sysfs = Sysfs(sysfs_root)
        for pf_index, pf in enumerate(spec.pfs):
            pidx = topo.physnet_index(pf.physnet)
            numvfs = pf.sriov_totalvfs if pf.sriov_numvfs is None else pf.sriov_numvfs
            hst["pfs"][pf.name] = {
                "index": pf_index,
                "physnet": pf.physnet,
                "physnet_index": pidx,
                "pci": names.pci_address(pf_index),
                "totalvfs": pf.sriov_totalvfs,
                "numvfs": 0,
                "vlans": [0],
                "link_down": False,
                "faults": [],
                "vfs": {},
            }
            self._ensure_fabric_bridge(st, batch, pidx, 0)
            Eswitch(hns, index, pf.name, pf_index, pidx).add_vlan(
                batch, self._fabric, 0, uplink_up=True
            )
            sysfs.add_pf(pf.name, names.pci_address(pf_index), pf.sriov_totalvfs)
            self._create_vfs(hst["pfs"][pf.name], hns, pf.name, numvfs, batch)
        batch.run()
        nft(hns, vf.NFT_TABLE)
        for pf in spec.pfs:
            self._sync_sysfs(hst, pf.name)

    def _create_vfs(self, pst: dict, hns: str, pf: str, n: int, batch: Batch) -> None:
        for i in range(n):
            vf.create_pair(batch, hns, pf, i, 0)
            pst["vfs"][str(i)] = {
                **vf.default_config(),
                "pci": names.pci_address(pst["index"], i),
                "netdev": names.vf_netdev(pf, i),
                "faults": [],
            }
        pst["numvfs"] = n

    def _sync_sysfs(self, hst: dict, pf: str) -> None:
        pst = hst["pfs"][pf]
        sysfs = Sysfs(Path(hst["sysfs"]))
        vfs = [pst["vfs"][str(i)] for i in range(pst["numvfs"])]
        sysfs.set_vfs(pst["pci"], [(v["pci"], v["netdev"]) for v in vfs])
        for v in vfs:
            if v["netns"] is not None:
                sysfs.hide_netdev(v["pci"], v["netdev"])

    def _underlay(
        self, physnet: str, vlan: int, cidr: str, topo: Topology, ipv6_cidr: str = ""
    ) -> UnderlayDhcp:
        return UnderlayDhcp(
            self.name, physnet, topo.physnet_index(physnet), vlan, cidr, self.state_dir, ipv6_cidr
        )

    # ------------------------------------------------------------------ queries

    def _read(self, host: str | None = None) -> State:
        """Everything, or (cheaper, for one host's questions) the shared part and `host`."""
        return self._store.read() if host is None else self._store.read_host(host)

    @property
    def topology(self) -> Topology:
        return Topology.from_dict(self._store.read_shared()["topology"])

    def status(self) -> dict[str, Any]:
        """Everything, as JSON-able data (what `status --json` prints)."""
        st = self._read()
        return {
            "name": st["name"],
            "status": st["status"],
            "state_dir": str(self.state_dir),
            "fabric": st["fabric"],
            "hosts": st["hosts"],
            "instances": [self._instance_info(st, n) for n in st["instances"]],
            "underlays": st["underlays"],
            "namespaces": self._namespaces(st),
        }

    def _namespaces(self, st: State) -> list[str]:
        result = [st["fabric"]["netns"]]
        result += [h["netns"] for h in st["hosts"].values()]
        result += [u["netns"] for u in st["underlays"].values()]
        result += [i["netns"] for i in st["instances"].values()]
        return result

    def hosts(self) -> list[str]:
        return list(self._read()["hosts"])

    def _on_host(self, host: str, always: bool = False) -> contextlib.AbstractContextManager[State]:
        """A transaction on one host's devices (see StateStore.host_transaction)."""
        names.check_label("host", host)  # its name makes a lock file's
        return self._store.host_transaction(host, always)

    def _host(self, st: State, host: str) -> dict:
        try:
            return st["hosts"][host]
        except KeyError:
            raise NotFound(f"no host {host!r} in simulator {self.name}") from None

    def _pf(self, st: State, host: str, pf: str) -> dict:
        try:
            return self._host(st, host)["pfs"][pf]
        except KeyError:
            raise NotFound(f"no PF {pf!r} on host {host!r}") from None

    def _vf(self, st: State, host: str, pf: str, index: int) -> dict:
        pst = self._pf(st, host, pf)
        try:
            return pst["vfs"][str(int(index))]
        except (KeyError, ValueError, TypeError):
            raise NotFound(f"no VF {index} on {host}/{pf} (sriov_numvfs={pst['numvfs']})") from None

    def host_netns(self, host: str) -> str:
        return self._host(self._read(host), host)["netns"]

    def host_mgmt_ip(self, host: str) -> str:
        return self._host(self._read(host), host)["mgmt_ip"]

    def is_network_node(self, host: str) -> bool:
        return bool(self._host(self._read(host), host)["network_node"])

    def sysfs_root(self, host: str) -> Path:
        return Path(self._host(self._read(host), host)["sysfs"])

    def pfs(self, host: str) -> list[str]:
        return list(self._host(self._read(host), host)["pfs"])

    def pf_physnet(self, host: str, pf: str) -> str:
        return self._pf(self._read(host), host, pf)["physnet"]

    def pf_pci_address(self, host: str, pf: str) -> str:
        return self._pf(self._read(host), host, pf)["pci"]

    def totalvfs(self, host: str, pf: str) -> int:
        return self._pf(self._read(host), host, pf)["totalvfs"]

    def numvfs(self, host: str, pf: str) -> int:
        return self._pf(self._read(host), host, pf)["numvfs"]

    def vf_netdev(self, host: str, pf: str, index: int) -> str:
        return self._vf(self._read(host), host, pf, index)["netdev"]

    def vf_pci_address(self, host: str, pf: str, index: int) -> str:
        return self._vf(self._read(host), host, pf, index)["pci"]

    def vf_representor(self, host: str, pf: str, index: int) -> str:
        self._vf(self._read(host), host, pf, index)
        return names.vf_representor(pf, int(index))

    def get_vf(self, host: str, pf: str, index: int) -> VfState:
        return self._vf_state(self._vf(self._read(host), host, pf, index), int(index))

    @staticmethod
    def _vf_state(cfg: dict, index: int) -> VfState:
        return VfState(
            mac=cfg["mac"],
            vlan=cfg["vlan"],
            spoofchk=cfg["spoofchk"],
            trust=cfg["trust"],
            link_state=cfg["link_state"],
            max_tx_rate=cfg["max_tx_rate"],
            netns=cfg["netns"],
            ifname=cfg["ifname"],
            index=index,
            pci_address=cfg["pci"],
            netdev=cfg["netdev"],
            bound=cfg.get("bound", True),
        )

    # ------------------------------------------------------------------ sriov_numvfs

    def set_numvfs(self, host: str, pf: str, n: int) -> None:
        """Kernel semantics: 0->N or N->0 only (else EBUSY), N <= totalvfs (else ERANGE)."""
        with self._on_host(host) as st:
            hst, pst = self._host(st, host), self._pf(st, host, pf)
            if not isinstance(n, int) or n < 0 or n > pst["totalvfs"]:
                raise InvalidArgument(
                    f"sriov_numvfs {n!r} out of range 0..{pst['totalvfs']}", errno.ERANGE
                )
            if n == pst["numvfs"]:
                return
            if pst["numvfs"] and n:
                raise DeviceBusy(
                    f"{host}/{pf}: Device or resource busy (sriov_numvfs is {pst['numvfs']}; "
                    "write 0 first)"
                )
            batch = Batch()
            if n == 0:
                in_use = [k for k, v in pst["vfs"].items() if v["netns"] is not None]
                if in_use:
                    raise DeviceBusy(f"{host}/{pf}: VFs {in_use} are plugged into instances")
                for k, cfg in pst["vfs"].items():
                    rep = names.vf_representor(pf, int(k))
                    vf.spoof_update(hst["netns"], vf.spoof_entry(rep, cfg), None)
                    vf.delete_pair(batch, hst["netns"], pf, int(k))
                batch.run()
                pst["vfs"] = {}
                pst["numvfs"] = 0
            else:
                self._create_vfs(pst, hst["netns"], pf, n, batch)
                batch.run()
            self._sync_sysfs(hst, pf)

    # ------------------------------------------------------------------ VF knobs

    def set_vf(
        self,
        host: str,
        pf: str,
        index: int,
        *,
        mac: str | None = None,
        vlan: int | None = None,
        spoofchk: bool | None = None,
        trust: bool | None = None,
        link_state: str | None = None,
        max_tx_rate: int | None = None,
    ) -> VfState:
        """Change only the given fields, on the datapath; return the new state."""
        if mac is not None:
            mac = _check_mac(mac)
        if vlan is not None and not (isinstance(vlan, int) and 0 <= vlan <= 4094):
            raise InvalidArgument(f"VLAN {vlan!r} out of range 0..4094")
        if link_state is not None and link_state not in vf.LINK_STATES:
            raise InvalidArgument(f"link_state must be one of {vf.LINK_STATES}")
        if max_tx_rate is not None and not (isinstance(max_tx_rate, int) and max_tx_rate >= 0):
            raise InvalidArgument("max_tx_rate must be an integer >= 0 (Mbit/s)")
        with self._on_host(host, always=True) as st:
            hst, pst = self._host(st, host), self._pf(st, host, pf)
            cfg = self._vf(st, host, pf, index)
            index = int(index)
            if link_state is not None and faults.pf_has(pst, faults.LINK_STATE_UNSUPPORTED):
                raise NotSupported(f"{host}/{pf}: link_state is not supported by this driver")
            if mac is not None and faults.consume(cfg, faults.MAC_SET_FAILS):
                raise MacSetFailed(
                    f"{host}/{pf} VF {index}: cannot set MAC {mac} "
                    "(VF in use; reload the VF driver)"
                )
            self._revive(hst, pf, index, cfg)
            hns, rep = hst["netns"], names.vf_representor(pf, index)
            where = (cfg["netns"] or hns, cfg["ifname"] or cfg["netdev"])
            old_entry = vf.spoof_entry(rep, cfg)
            if mac is not None and mac != cfg["mac"]:
                if not (cfg.get("bound", True) and faults.pf_has(pst, faults.MAC_NEEDS_VF_RESET)):
                    self._on_netdev(hst, pf, index, cfg, lambda: vf.set_mac(*where, mac))
                # else (igb): the admin MAC only; the netdev keeps its address until reset
                cfg["mac"] = mac
            if vlan is not None and vlan != cfg["vlan"]:
                self._ensure_vlan(st, host, pf, vlan)
                vf.set_master(hns, rep, names.eswitch_bridge(pf, vlan))
                cfg["vlan"] = vlan
            if spoofchk is not None:
                cfg["spoofchk"] = bool(spoofchk)
            if trust is not None:
                cfg["trust"] = bool(trust)
            vf.spoof_update(hns, old_entry, vf.spoof_entry(rep, cfg))
            if link_state is not None and link_state != cfg["link_state"]:
                vf.set_link_state(hns, rep, link_state)
                cfg["link_state"] = link_state
            if max_tx_rate is not None and max_tx_rate != cfg["max_tx_rate"]:
                vf.set_rate(*where, max_tx_rate)
                cfg["max_tx_rate"] = max_tx_rate
            return self._vf_state(cfg, index)

    # ------------------------------------------------------------------ VF driver

    def vf_netdev_mac(self, host: str, pf: str, index: int) -> str | None:
        """The address the VF netdev really uses (None while unbound)."""
        hst = self._host(self._read(host), host)
        cfg = self._vf(self._read(host), host, pf, index)
        if not cfg.get("bound", True):
            return None
        where = (cfg["netns"] or hst["netns"], cfg["ifname"] or cfg["netdev"])
        return netns.link_address(*where)

    def reset_vf_netdev(self, host: str, pf: str, index: int) -> None:
        """The VF netdev went down and up: its driver reset and took the admin MAC."""
        with self._on_host(host, always=True) as st:
            hst, cfg = self._host(st, host), self._vf(st, host, pf, index)
            if not cfg.get("bound", True):
                raise NotFound(f"{host}/{pf} VF {index} has no driver bound")
            self._take_admin_mac(hst, pf, int(index), cfg)

    def _take_admin_mac(self, hst: dict, pf: str, index: int, cfg: dict) -> None:
        if cfg["mac"] != vf.ZERO_MAC:
            where = (cfg["netns"] or hst["netns"], cfg["ifname"] or cfg["netdev"])
            self._on_netdev(hst, pf, index, cfg, lambda: vf.set_mac(*where, cfg["mac"]))

    def unbind_vf(self, host: str, pf: str, index: int) -> None:
        """The VF driver lets go: the VF netdev vanishes from wherever it was (an
        instance namespace loses it; modelled by taking it home and hiding it)."""
        with self._on_host(host, always=True) as st:
            hst, cfg = self._host(st, host), self._vf(st, host, pf, index)
            if not cfg.get("bound", True):
                raise NotFound(f"{host}/{pf} VF {index} has no driver bound")
            self._unplug(hst, pf, int(index), cfg)
            ip(hst["netns"], "link", "set", "dev", cfg["netdev"], "down")
            cfg["bound"] = False
            sysfs = Sysfs(Path(hst["sysfs"]))
            sysfs.hide_netdev(cfg["pci"], cfg["netdev"])
            sysfs.set_bound(cfg["pci"], False)

    def bind_vf(self, host: str, pf: str, index: int) -> None:
        """The VF driver probes: a netdev in the host namespace with the admin MAC."""
        with self._on_host(host, always=True) as st:
            hst, cfg = self._host(st, host), self._vf(st, host, pf, index)
            if cfg.get("bound", True):
                raise DeviceBusy(f"{host}/{pf} VF {index} is bound already")
            cfg["bound"] = True
            mac = cfg["mac"] if cfg["mac"] != vf.ZERO_MAC else vf.random_mac()
            vf.set_mac(hst["netns"], cfg["netdev"], mac)
            sysfs = Sysfs(Path(hst["sysfs"]))
            sysfs.set_bound(cfg["pci"], True)
            sysfs.show_netdev(cfg["pci"], cfg["netdev"])

    def pf_capabilities(self, host: str, pf: str) -> dict[str, bool]:
        """Optional knobs: link_state unless the PF has the igb quirk; min_tx_rate and
        802.1ad are not simulated."""
        pst = self._pf(self._read(host), host, pf)
        return {
            "link_state": not faults.pf_has(pst, faults.LINK_STATE_UNSUPPORTED),
            "min_tx_rate": False,
            "vlan_8021ad": False,
        }

    def _ensure_vlan(self, st: State, host: str, pf: str, vlan: int) -> None:
        hst, pst = st["hosts"][host], st["hosts"][host]["pfs"][pf]
        if vlan in pst["vlans"]:
            return
        with self._store.transaction() as shared:  # the fabric is every host's
            batch = Batch()
            self._ensure_fabric_bridge(shared, batch, pst["physnet_index"], vlan)
            batch.run()
        batch = Batch()
        Eswitch(hst["netns"], hst["index"], pf, pst["index"], pst["physnet_index"]).add_vlan(
            batch, self._fabric, vlan, uplink_up=not (hst["down"] or pst["link_down"])
        )
        batch.run()
        pst["vlans"].append(vlan)

    def _revive(self, hst: dict, pf: str, index: int, cfg: dict) -> None:
        """If the instance namespace holding the VF vanished, the veth died with it:
        recreate the pair in the host namespace with the VF's config (as hardware would)."""
        if cfg["netns"] is None or netns.exists(cfg["netns"]):
            return
        self._recreate_pair(hst, pf, index, cfg)

    def _on_netdev(self, hst: dict, pf: str, index: int, cfg: dict, command) -> None:
        """Run `command` on a VF netdev the state says is home. A plug whose process was
        killed between the move and the state write leaves the netdev elsewhere (or gone
        with its namespace): then the pair is recreated, as a real VF comes back when its
        namespace goes, and the command runs again. No extra check on the common path."""
        try:
            command()
        except CommandFailed:
            if cfg["netns"] is not None or netns.link_exists(hst["netns"], cfg["netdev"]):
                raise
            self._recreate_pair(hst, pf, index, cfg)
            command()

    def _recreate_pair(self, hst: dict, pf: str, index: int, cfg: dict) -> None:
        hns = hst["netns"]
        ip(hns, "link", "del", "dev", names.vf_representor(pf, index), check=False)
        batch = Batch()
        vf.create_pair(batch, hns, pf, index, cfg["vlan"])
        batch.run()
        cfg["netns"] = cfg["ifname"] = None
        vf.apply_all(hns, pf, index, cfg)
        Sysfs(Path(hst["sysfs"])).show_netdev(cfg["pci"], cfg["netdev"])

    # ------------------------------------------------------------------ plugging

    def plug_vf(self, host: str, pf: str, index: int, netns_name: str, ifname: str) -> None:
        """Move the VF netdev into ``netns_name`` as ``ifname`` and bring it up; idempotent."""
        names.check_ifname(ifname)
        if not netns.exists(netns_name):
            raise NotFound(f"network namespace {netns_name!r} does not exist")
        with self._on_host(host, always=True) as st:
            hst = self._host(st, host)
            cfg = self._vf(st, host, pf, index)
            index = int(index)
            if not cfg.get("bound", True):
                raise NotFound(f"{host}/{pf} VF {index} has no netdev (no driver bound)")
            self._revive(hst, pf, index, cfg)
            if cfg["netns"] == netns_name and cfg["ifname"] == ifname:
                if netns.link_exists(netns_name, ifname):
                    return
                self._recreate_pair(hst, pf, index, cfg)
            if cfg["netns"] is not None:
                self._unplug(hst, pf, index, cfg)
            if netns.link_exists(netns_name, ifname):
                raise DeviceBusy(f"{ifname} already exists in {netns_name}")
            move = ["link", "set", "dev", cfg["netdev"], "netns", netns_name, "name", ifname, "up"]
            try:  # one request: move, rename, up
                self._on_netdev(hst, pf, index, cfg, lambda: ip(hst["netns"], *move))
            except CommandFailed:
                # the kernel moves first and renames after: a failed rename leaves the
                # netdev in the target under its own name -- bring it home
                ip(
                    netns_name,
                    "link",
                    "set",
                    "dev",
                    cfg["netdev"],
                    "netns",
                    hst["netns"],
                    check=False,
                )
                raise
            cfg["netns"], cfg["ifname"] = netns_name, ifname
            Sysfs(Path(hst["sysfs"])).hide_netdev(cfg["pci"], cfg["netdev"])
            if cfg["max_tx_rate"]:  # qdiscs do not survive a namespace move
                vf.set_rate(netns_name, ifname, cfg["max_tx_rate"])

    def unplug_vf(self, host: str, pf: str, index: int) -> None:
        """Bring the VF netdev back into the host namespace under its own name; idempotent."""
        with self._on_host(host, always=True) as st:
            hst = self._host(st, host)
            cfg = self._vf(st, host, pf, int(index))
            self._unplug(hst, pf, int(index), cfg)

    def _unplug(self, hst: dict, pf: str, index: int, cfg: dict) -> None:
        hns = hst["netns"]
        if cfg["netns"] is None:
            if not netns.link_exists(hns, cfg["netdev"]):
                self._recreate_pair(hst, pf, index, cfg)
            return
        try:
            ip(
                cfg["netns"],
                "link",
                "set",
                "dev",
                cfg["ifname"],
                "netns",
                hns,
                "name",
                cfg["netdev"],
            )
        except CommandFailed:
            if netns.link_exists(cfg["netns"], cfg["ifname"]):
                raise
            self._recreate_pair(hst, pf, index, cfg)  # the instance ns took it with it
            return
        cfg["netns"] = cfg["ifname"] = None
        Sysfs(Path(hst["sysfs"])).show_netdev(cfg["pci"], cfg["netdev"])
        if cfg["max_tx_rate"]:
            vf.set_rate(hns, cfg["netdev"], cfg["max_tx_rate"])

    # ------------------------------------------------------------------ instances

    def _instance(self, name: str) -> Instance:
        return Instance(self.name, name, self.state_dir)

    def create_instance(self, host: str, name: str, kind: str = "container") -> str:
        """An instance namespace (``ciao-<sim>-i-<name>``); "vm" adds a DHCP-ing guest."""
        names.check_label("instance", name)
        if kind not in ("container", "vm"):
            raise InvalidArgument(f"kind must be 'container' or 'vm', not {kind!r}")
        self._host(self._read(host), host)
        inst = self._instance(name)
        with self._store.transaction() as st:
            known = st["instances"].get(name)
            if known is not None and (known["host"], known["kind"]) != (host, kind):
                raise DeviceBusy(f"instance {name!r} exists on {known['host']} as {known['kind']}")
            st["instances"][name] = {"host": host, "kind": kind, "netns": inst.netns}
        inst.create(kind)  # outside the lock: a guest takes ~0.1 s to start
        return inst.netns

    def delete_instance(self, name: str) -> None:
        """Unplug its VFs (a deleted netns destroys veths), stop the guest, delete the ns."""
        inst = self._instance(name)
        for host in self._hosts_holding(self._read(), inst.netns):
            with self._store.host_transaction(host, always=True) as st:
                hst = self._host(st, host)
                for pf, pst in hst["pfs"].items():
                    for k, cfg in pst["vfs"].items():
                        if cfg["netns"] == inst.netns:
                            self._unplug(hst, pf, int(k), cfg)
        inst.destroy()
        with self._store.transaction() as st:
            st["instances"].pop(name, None)

    @staticmethod
    def _hosts_holding(st: State, netns_name: str) -> list[str]:
        return [
            host
            for host, hst in st["hosts"].items()
            if any(
                cfg["netns"] == netns_name
                for pst in hst["pfs"].values()
                for cfg in pst["vfs"].values()
            )
        ]

    def instances(self) -> list[dict]:
        st = self._read()
        return [self._instance_info(st, n) for n in st["instances"]]

    def _instance_info(self, st: State, name: str) -> dict:
        info = st["instances"][name]
        inst = self._instance(name)
        vfs = [
            {"host": h, "pf": pf, "index": int(k), "ifname": cfg["ifname"], "mac": cfg["mac"]}
            for h, hst in st["hosts"].items()
            for pf, pst in hst["pfs"].items()
            for k, cfg in pst["vfs"].items()
            if cfg["netns"] == info["netns"]
        ]
        return {
            "name": name,
            **info,
            "exists": netns.exists(info["netns"]),
            "guest_pid": pidfile_process(inst.guest_pidfile) if info["kind"] == "vm" else None,
            "vfs": vfs,
        }

    # ------------------------------------------------------------------ underlay DHCP

    def underlay_leases(self, physnet: str, vlan: int) -> list[dict]:
        """The underlay server's lease file: a lease source for `ipam=underlay`."""
        st = self._store.read_shared()
        u = st["underlays"].get(f"{physnet}-{vlan}")
        if u is None:
            raise NotFound(f"no underlay DHCP on {physnet}:{vlan}")
        return self._underlay(physnet, vlan, u["cidr"], self.topology).leases()

    # ------------------------------------------------------------------ faults, outages

    def inject_fault(self, host: str, pf: str, index: int | None, fault: str) -> None:
        with self._on_host(host) as st:
            faults.add(self._pf(st, host, pf), index, fault)

    def clear_faults(self, host: str, pf: str, index: int | None = None) -> None:
        with self._on_host(host) as st:
            faults.clear(self._pf(st, host, pf), index)

    def _fabric_ports(self, hst: dict, pf: str | None = None) -> list[str]:
        ports = [] if pf is not None else [names.fabric_mgmt_port(hst["index"])]
        for name, pst in hst["pfs"].items():
            if pf is None or name == pf:
                ports += [
                    names.fabric_uplink_port(hst["index"], pst["index"], v) for v in pst["vlans"]
                ]
        return ports

    def host_down(self, host: str) -> None:
        """The host drops off the network: its uplinks and mgmt link go down."""
        with self._on_host(host) as st:
            hst = self._host(st, host)
            self._fabric.set_ports(self._fabric_ports(hst), up=False)
            hst["down"] = True

    def host_up(self, host: str) -> None:
        with self._on_host(host) as st:
            hst = self._host(st, host)
            ports = [names.fabric_mgmt_port(hst["index"])]
            for pf, pst in hst["pfs"].items():
                if not pst["link_down"]:
                    ports += self._fabric_ports(hst, pf)
            self._fabric.set_ports(ports, up=True)
            hst["down"] = False

    def flap_link(self, host: str, pf: str, down_seconds: float = 1.0) -> None:
        """Take the PF's uplinks down for ``down_seconds`` (blocks), then back up."""
        with self._on_host(host) as st:
            hst, pst = self._host(st, host), self._pf(st, host, pf)
            self._fabric.set_ports(self._fabric_ports(hst, pf), up=False)
            pst["link_down"] = True
        time.sleep(down_seconds)
        with self._store.host_transaction(host) as st:
            hst, pst = self._host(st, host), self._pf(st, host, pf)
            pst["link_down"] = False
            if not hst["down"]:
                self._fabric.set_ports(self._fabric_ports(hst, pf), up=True)

    # ------------------------------------------------------------------ misc

    def __repr__(self) -> str:
        return f"Simulator(name={self.name!r}, state_dir={str(self.state_dir)!r})"
