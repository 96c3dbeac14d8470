"""The topology as plain data: physnets, hosts, PFs and underlay DHCP servers.

Built from CLI flags (:meth:`Topology.from_flags`) or a YAML/JSON file
(:meth:`Topology.from_file`); turned into namespaces and links by
:class:`simulator.core.Simulator`.  Example file::

    physnets: [physnet1, physnet2]
    hosts:
      - name: node1
        pfs: [{name: pf0, physnet: physnet1, sriov_totalvfs: 8}]
      - name: netnode
        network_node: true
        pfs: [{name: pf0, physnet: physnet1, sriov_totalvfs: 4}]
    underlays:
      - {physnet: physnet1, vlan: 300, cidr: 10.30.0.0/24}
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import names
from .errors import InvalidArgument

MAX_TOTALVFS = 256
MAX_HOSTS = 250


@dataclass
class PfSpec:
    name: str
    physnet: str
    sriov_totalvfs: int = 8
    # VFs created by `up` (the sriov_numvfs written at boot); None = all of them
    sriov_numvfs: int | None = None


@dataclass
class HostSpec:
    name: str
    pfs: list[PfSpec] = field(default_factory=list)
    network_node: bool = False


@dataclass
class UnderlaySpec:
    physnet: str
    vlan: int
    cidr: str
    ipv6_cidr: str = ""  # a /64 its router announces (SLAAC), or none


@dataclass
class Topology:
    physnets: list[str]
    hosts: list[HostSpec]
    underlays: list[UnderlaySpec] = field(default_factory=list)

    # --- construction -----------------------------------------------------------

    @classmethod
    def from_flags(
        cls,
        *,
        hosts: int = 2,
        pfs: int = 1,
        vfs: int = 8,
        physnets: list[str] | None = None,
        network_node: bool = False,
        underlays: list[str] | None = None,
        numvfs: int | None = None,
    ) -> Topology:
        """`--hosts N --pfs N --vfs N --physnet P...`: PF i goes to physnet i mod len."""
        physnets = list(physnets or ["physnet1"])

        def host(name: str, is_net: bool) -> HostSpec:
            return HostSpec(
                name=name,
                network_node=is_net,
                pfs=[
                    PfSpec(f"pf{i}", physnets[i % len(physnets)], vfs, numvfs) for i in range(pfs)
                ],
            )

        host_list = [host(f"node{i + 1}", False) for i in range(hosts)]
        if network_node:
            host_list.append(host("netnode", True))
        topo = cls(physnets, host_list, [parse_underlay(u) for u in underlays or []])
        topo.validate()
        return topo

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Topology:
        try:
            hosts = [
                HostSpec(
                    name=str(h["name"]),
                    network_node=bool(h.get("network_node", False)),
                    pfs=[
                        PfSpec(
                            name=str(p["name"]),
                            physnet=str(p["physnet"]),
                            sriov_totalvfs=int(p.get("sriov_totalvfs", 8)),
                            sriov_numvfs=(
                                None if p.get("sriov_numvfs") is None else int(p["sriov_numvfs"])
                            ),
                        )
                        for p in h.get("pfs", [])
                    ],
                )
                for h in data.get("hosts", [])
            ]
            underlays = [
                UnderlaySpec(
                    str(u["physnet"]), int(u["vlan"]), str(u["cidr"]), str(u.get("ipv6_cidr", ""))
                )
                for u in data.get("underlays", [])
            ]
            physnets = [str(p) for p in data.get("physnets", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"bad topology: {exc!r}") from exc
        if not physnets:  # infer from the PFs, in order of appearance
            for h in hosts:
                for p in h.pfs:
                    if p.physnet not in physnets:
                        physnets.append(p.physnet)
        topo = cls(physnets, hosts, underlays)
        topo.validate()
        return topo

    @classmethod
    def from_file(cls, path: str | Path) -> Topology:
        text = Path(path).read_text()
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        if not isinstance(data, dict):
            raise InvalidArgument(f"{path}: topology must be a mapping")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # --- queries ----------------------------------------------------------------

    def host(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise InvalidArgument(f"no host {name!r} in topology")

    def physnet_index(self, physnet: str) -> int:
        return self.physnets.index(physnet)

    def total_vfs(self) -> int:
        return sum(p.sriov_totalvfs for h in self.hosts for p in h.pfs)

    # --- validation -------------------------------------------------------------

    def validate(self) -> None:
        if not self.physnets:
            raise InvalidArgument("at least one physnet is required")
        for p in self.physnets:
            if not names.PHYSNET_RE.match(p):
                raise InvalidArgument(f"physnet {p!r} must match {names.PHYSNET_RE.pattern}")
        if len(set(self.physnets)) != len(self.physnets):
            raise InvalidArgument("duplicate physnet")
        if not self.hosts or len(self.hosts) > MAX_HOSTS:
            raise InvalidArgument(f"1..{MAX_HOSTS} hosts are required")
        seen: set[str] = set()
        for h in self.hosts:
            names.check_label("host", h.name)
            if h.name in names.RESERVED_HOSTS or h.name.startswith(names.RESERVED_HOST_PREFIXES):
                raise InvalidArgument(f"host name {h.name!r} is reserved")
            if h.name in seen:
                raise InvalidArgument(f"duplicate host {h.name!r}")
            seen.add(h.name)
            pf_names: set[str] = set()
            for pf in h.pfs:
                if not names.PF_NAME_RE.match(pf.name):
                    raise InvalidArgument(
                        f"PF name {pf.name!r} must match {names.PF_NAME_RE.pattern}"
                    )
                if pf.name in pf_names or pf.name == names.MGMT_IFNAME:
                    raise InvalidArgument(f"duplicate PF {pf.name!r} on {h.name}")
                pf_names.add(pf.name)
                if pf.physnet not in self.physnets:
                    raise InvalidArgument(f"PF {h.name}/{pf.name}: unknown physnet {pf.physnet!r}")
                if not 0 <= pf.sriov_totalvfs <= MAX_TOTALVFS:
                    raise InvalidArgument(f"sriov_totalvfs must be 0..{MAX_TOTALVFS}")
                if pf.sriov_numvfs is not None and not 0 <= pf.sriov_numvfs <= pf.sriov_totalvfs:
                    raise InvalidArgument("sriov_numvfs must be 0..sriov_totalvfs")
        keys: set[tuple[str, int]] = set()
        for u in self.underlays:
            if u.physnet not in self.physnets:
                raise InvalidArgument(f"underlay: unknown physnet {u.physnet!r}")
            if not 0 <= u.vlan <= 4094:
                raise InvalidArgument(f"underlay VLAN {u.vlan} out of range 0..4094")
            try:
                net = ipaddress.IPv4Network(u.cidr)
            except ValueError as exc:
                raise InvalidArgument(f"underlay cidr {u.cidr!r}: {exc}") from exc
            if net.prefixlen > 29:
                raise InvalidArgument(f"underlay cidr {u.cidr!r} is too small (max /29)")
            if u.ipv6_cidr:
                try:
                    net6 = ipaddress.IPv6Network(u.ipv6_cidr)
                except ValueError as exc:
                    raise InvalidArgument(f"underlay ipv6_cidr {u.ipv6_cidr!r}: {exc}") from exc
                if net6.prefixlen != 64:
                    raise InvalidArgument(f"underlay ipv6_cidr {u.ipv6_cidr!r} must be a /64")
            if (u.physnet, u.vlan) in keys:
                raise InvalidArgument(f"duplicate underlay {u.physnet}:{u.vlan}")
            keys.add((u.physnet, u.vlan))


def parse_underlay(text: str) -> UnderlaySpec:
    """`physnet:vlan:cidr[,ipv6_cidr]` as given to `up --underlay`."""
    try:
        physnet, vlan, cidrs = text.split(":", 2)
        cidr, _, ipv6_cidr = cidrs.partition(",")
        return UnderlaySpec(physnet, int(vlan), cidr, ipv6_cidr)
    except ValueError as exc:
        raise InvalidArgument(
            f"--underlay {text!r}: expected physnet:vlan:cidr[,ipv6_cidr]"
        ) from exc
