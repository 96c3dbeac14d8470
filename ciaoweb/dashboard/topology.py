"""The topology picture: physnets and their VLANs (networks) on the left, hosts with
their PFs and VFs on the right, a line from every held VF to its network.

A PF's VFs are a dense grid of small cells (state by fill, network by outline, details in
the cell's title), CELLS_PER_ROW to a row, so a host with 64 VFs per PF is two rows tall
per PF: 16 such hosts fit in about one screen (a labelled chip per VF made it ~10,000 px).

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
CELL, CELL_GAP, CELLS_PER_ROW = 10, 3, 32
HOST_HEADER, PF_HEADER, PF_GAP, HOST_PAD, HOST_GAP = 28, 20, 6, 10, 12
HOST_W = HOST_PAD * 2 + CELLS_PER_ROW * (CELL + CELL_GAP) - CELL_GAP
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
class VfCell:
    id: str
    title: str
    state: str
    color: str | None
    network_id: str | None
    instance_id: str | None
    x: int = 0
    y: int = 0
    w: int = CELL
    h: int = CELL


@dataclass
class PfRow:
    id: str
    label: str
    y: int = 0
    cells: list[VfCell] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return -(-len(self.cells) // CELLS_PER_ROW)


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


def _cell(vf: VirtualFunction, boxes: dict[str, NetworkBox], hardware: bool = True) -> VfCell:
    attachment = getattr(vf, "attachment", None)
    network_id = str(attachment.network_id) if attachment else None
    box = boxes.get(network_id) if network_id else None
    state = vf.state.replace("_", " ")
    if hardware:
        title = f"vf{vf.index} {vf.pci_address} · {state}"
    else:  # a member: its own attachment's VF, no PF slot or PCI address
        title = f"VF · {state}"
    if attachment:
        title += f" · {attachment.instance} {attachment.ifname} · MAC {attachment.mac}"
        if vf.vlan:
            title += f" · VLAN {vf.vlan}"
    return VfCell(
        id=str(vf.pk),
        title=title,
        state=vf.state,
        color=box.color if box else None,
        network_id=network_id,
        instance_id=str(attachment.instance_id) if attachment else None,
    )


def _pf_label(pf: PhysicalFunction, cells: list[VfCell], show_all: bool, hardware: bool) -> str:
    """What the cells do not say at a glance: the PF, and how many of its VFs are held."""
    name = f"{pf.name} · {pf.physnet} · {pf.pci_address}" if hardware else pf.physnet
    if not show_all:  # a member sees its own VFs only
        return f"{name} · {len(cells)} VF{'s' if len(cells) != 1 else ''} of yours"
    held = sum(1 for cell in cells if cell.state != VfState.FREE)
    return f"{name} · {held} of {len(cells)} VFs held"


def _place_host(host: HostBox, y: int) -> int:
    host.y = y
    cursor = y + HOST_HEADER
    for pf in host.pfs:
        pf.y = cursor
        cursor += PF_HEADER
        for position, cell in enumerate(pf.cells):
            row, column = divmod(position, CELLS_PER_ROW)
            cell.x = host.x + HOST_PAD + column * (CELL + CELL_GAP)
            cell.y = cursor + row * (CELL + CELL_GAP)
        cursor += pf.rows * (CELL + CELL_GAP) + PF_GAP
    host.h = max(cursor - y + HOST_PAD, HOST_HEADER + HOST_PAD)
    return y + host.h + HOST_GAP


def _link(cell: VfCell, box: NetworkBox) -> Link:
    x1, y1 = box.anchor_x, box.anchor_y
    x2, y2 = cell.x, cell.y + cell.h // 2
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
    physnet only and a VF cell names no PF, VF index or PCI address."""
    physnets, boxes = _network_boxes(networks)
    left_height = _place_networks(physnets)
    vfs = vfs.select_related("attachment__instance__tenant")
    cells_by_pf: dict[object, list[VfCell]] = {}
    for vf in vfs.order_by("pf_id", "index"):
        if show_all_vfs or getattr(vf, "attachment", None) is not None:
            cells_by_pf.setdefault(vf.pf_id, []).append(_cell(vf, boxes, show_hardware))
    host_boxes = []
    y = MARGIN
    pfs = PhysicalFunction.objects.filter(host__in=hosts).select_related("host")
    pfs_by_host: dict[object, list[PhysicalFunction]] = {}
    for pf in pfs.order_by("host__name", "name"):
        pfs_by_host.setdefault(pf.host_id, []).append(pf)
    for host in hosts.order_by("name"):
        box = HostBox(id=str(host.pk), name=host.name, state=host.state)
        for pf in pfs_by_host.get(host.pk, []):
            cells = cells_by_pf.get(pf.pk, [])
            if cells or show_all_vfs:
                label = _pf_label(pf, cells, show_all_vfs, show_hardware)
                box.pfs.append(PfRow(str(pf.pk), label, cells=cells))
        y = _place_host(box, y)
        host_boxes.append(box)
    links = [
        _link(cell, boxes[cell.network_id])
        for host in host_boxes
        for pf in host.pfs
        for cell in pf.cells
        if cell.network_id in boxes and cell.state != VfState.FREE
    ]
    width = HOSTS_X + HOST_W + MARGIN
    return Topology(physnets, host_boxes, links, width, max(left_height, y, 120))


def hosts_holding(vfs: QuerySet) -> QuerySet:
    """The hosts of these VFs (what a member may know: where its instances run)."""
    return Host.objects.filter(pfs__vfs__in=vfs).distinct()
