"""The topology picture: physnets and their VLANs (networks) on the left, hosts with
their PFs and VFs on the right, a line from every held VF to its network.

Positions are computed here and drawn by `dashboard/topology_svg.html`, so the SVG is the
same server-side for the first paint and for each live refresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction

MARGIN = 12
NETWORK_W, NETWORK_H, NETWORK_GAP = 250, 46, 8
PHYSNET_HEADER = 28
HOSTS_X = NETWORK_W + 120
CHIP_W, CHIP_H, CHIP_GAP, CHIPS_PER_ROW = 128, 26, 6, 4
HOST_HEADER, PF_HEADER, HOST_PAD, HOST_GAP = 30, 22, 10, 14
HOST_W = HOST_PAD * 2 + CHIPS_PER_ROW * CHIP_W + (CHIPS_PER_ROW - 1) * CHIP_GAP
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


@dataclass
class NetworkBox:
    id: str
    label: str
    detail: str
    color: str
    x: int = MARGIN
    y: int = 0
    w: int = NETWORK_W
    h: int = NETWORK_H

    @property
    def anchor_x(self) -> int:
        return self.x + self.w

    @property
    def anchor_y(self) -> int:
        return self.y + self.h // 2


@dataclass
class PhysnetBox:
    name: str
    y: int = 0
    networks: list[NetworkBox] = field(default_factory=list)


@dataclass
class VfChip:
    id: str
    label: str
    title: str
    state: str
    color: str | None
    network_id: str | None
    x: int = 0
    y: int = 0
    w: int = CHIP_W
    h: int = CHIP_H


@dataclass
class PfRow:
    label: str
    y: int = 0
    chips: list[VfChip] = field(default_factory=list)


@dataclass
class HostBox:
    id: str
    name: str
    state: str
    x: int = HOSTS_X
    y: int = 0
    w: int = HOST_W
    h: int = 0
    pfs: list[PfRow] = field(default_factory=list)


@dataclass
class Link:
    path: str
    color: str


@dataclass
class Topology:
    physnets: list[PhysnetBox]
    hosts: list[HostBox]
    links: list[Link]
    width: int
    height: int


def _network_boxes(networks: QuerySet) -> tuple[list[PhysnetBox], dict[str, NetworkBox]]:
    physnets: dict[str, PhysnetBox] = {}
    boxes: dict[str, NetworkBox] = {}
    for index, network in enumerate(networks.order_by("physnet", "vlan")):
        box = NetworkBox(
            id=str(network.pk),
            label=f"VLAN {network.vlan} · {network.name}",
            detail=f"{network.cidr} · {network.ipam}"
            + (" · shared" if network.shared else f" · {network.tenant}"),
            color=PALETTE[index % len(PALETTE)],
        )
        physnets.setdefault(network.physnet, PhysnetBox(network.physnet)).networks.append(box)
        boxes[box.id] = box
    return [physnets[name] for name in sorted(physnets)], boxes


def _place_networks(physnets: list[PhysnetBox]) -> int:
    y = MARGIN
    for physnet in physnets:
        physnet.y = y
        y += PHYSNET_HEADER
        for box in physnet.networks:
            box.y = y
            y += NETWORK_H + NETWORK_GAP
        y += NETWORK_GAP
    return y


def _chip(vf: VirtualFunction, boxes: dict[str, NetworkBox], hardware: bool = True) -> VfChip:
    attachment = getattr(vf, "attachment", None)
    network_id = str(attachment.network_id) if attachment else None
    box = boxes.get(network_id) if network_id else None
    holder = attachment.instance.name if attachment else vf.state.replace("_", " ")
    if hardware:
        label, title = f"vf{vf.index} {holder}", f"vf{vf.index} {vf.pci_address} · {vf.state}"
    else:  # a member: its own attachment's VF, no PF slot or PCI address
        label = f"{holder} {attachment.ifname}" if attachment else holder
        title = f"VF · {vf.state}"
    if attachment:
        title += f" · {attachment.instance} {attachment.ifname} · MAC {attachment.mac}"
        if vf.vlan:
            title += f" · VLAN {vf.vlan}"
    return VfChip(
        id=str(vf.pk),
        label=label,
        title=title,
        state=vf.state,
        color=box.color if box else None,
        network_id=network_id,
    )


def _place_host(host: HostBox, y: int) -> int:
    host.y = y
    cursor = y + HOST_HEADER
    for pf in host.pfs:
        pf.y = cursor
        cursor += PF_HEADER
        for position, chip in enumerate(pf.chips):
            row, column = divmod(position, CHIPS_PER_ROW)
            chip.x = host.x + HOST_PAD + column * (CHIP_W + CHIP_GAP)
            chip.y = cursor + row * (CHIP_H + CHIP_GAP)
        rows = -(-len(pf.chips) // CHIPS_PER_ROW)
        cursor += rows * (CHIP_H + CHIP_GAP) + 4
    host.h = max(cursor - y + HOST_PAD, HOST_HEADER + HOST_PAD)
    return y + host.h + HOST_GAP


def _link(chip: VfChip, box: NetworkBox) -> Link:
    x1, y1 = box.anchor_x, box.anchor_y
    x2, y2 = chip.x, chip.y + chip.h // 2
    middle = (x1 + x2) // 2
    return Link(f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}", box.color)


def build_topology(
    networks: QuerySet,
    hosts: QuerySet,
    vfs: QuerySet,
    show_all_vfs: bool,
    show_hardware: bool = True,
) -> Topology:
    """`networks`, `hosts`, `vfs` are already scoped to what the user may see; members
    (`show_all_vfs=False`) see only the VFs of their own attachments. Without
    `show_hardware` (members: PFs and VFs are admin-only collections) a PF row is its
    physnet only and a VF chip names no PF, VF index or PCI address."""
    physnets, boxes = _network_boxes(networks)
    left_height = _place_networks(physnets)
    vfs = vfs.select_related("pf__host", "attachment__instance", "attachment__network")
    chips_by_pf: dict[object, list[VfChip]] = {}
    for vf in vfs.order_by("pf__host__name", "pf__name", "index"):
        if show_all_vfs or getattr(vf, "attachment", None) is not None:
            chips_by_pf.setdefault(vf.pf_id, []).append(_chip(vf, boxes, show_hardware))
    host_boxes = []
    y = MARGIN
    pfs = PhysicalFunction.objects.filter(host__in=hosts).select_related("host")
    pfs_by_host: dict[object, list[PhysicalFunction]] = {}
    for pf in pfs.order_by("host__name", "name"):
        pfs_by_host.setdefault(pf.host_id, []).append(pf)
    for host in hosts.order_by("name"):
        box = HostBox(id=str(host.pk), name=host.name, state=host.state)
        for pf in pfs_by_host.get(host.pk, []):
            chips = chips_by_pf.get(pf.pk, [])
            if chips or show_all_vfs:
                label = (
                    f"{pf.name} · {pf.physnet} · {pf.pci_address}" if show_hardware else pf.physnet
                )
                box.pfs.append(PfRow(label, chips=chips))
        y = _place_host(box, y)
        host_boxes.append(box)
    links = [
        _link(chip, boxes[chip.network_id])
        for host in host_boxes
        for pf in host.pfs
        for chip in pf.chips
        if chip.network_id in boxes and chip.state != VfState.FREE
    ]
    width = HOSTS_X + HOST_W + MARGIN
    return Topology(physnets, host_boxes, links, width, max(left_height, y, 120))


def hosts_holding(vfs: QuerySet) -> QuerySet:
    """The hosts of these VFs (what a member may know: where its instances run)."""
    return Host.objects.filter(pfs__vfs__in=vfs).distinct()
