"""Plain-dict specs sent to node agents (docs/architecture.md): what a node must make
true, with every value the agent needs so it never asks the database."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from ciaoweb.instances.choices import InstanceState
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.networks.choices import Ipam, NetworkKind
from ciaoweb.networks.ipam import dhcp_reservations
from ciaoweb.networks.models import Network
from ciaoweb.taskrouting import FEATURE_DHCP_PARTIAL

from .choices import DhcpServerState
from .models import DhcpServer
from .overlay import overlay_spec


def vf_spec(vf: VirtualFunction | None) -> dict[str, Any] | None:
    if vf is None:
        return None
    return {"id": str(vf.pk), "pf": vf.pf.name, "index": vf.index, "pci_address": vf.pci_address}


def attachment_spec(
    attachment: Attachment, vf: VirtualFunction | None, overlay: dict | None = None
) -> dict[str, Any]:
    network = attachment.network
    return {
        "attachment_id": str(attachment.pk),
        "network_id": str(network.pk),
        "ifname": attachment.ifname,
        "mac": attachment.mac,
        "ip": attachment.ip,
        "prefixlen": ipaddress.IPv4Network(network.cidr).prefixlen,
        "gateway": network.gateway,
        "ipam": network.ipam,
        "kind": network.kind,
        "vlan": network.vlan or 0,
        "physnet": network.physnet,
        "mtu": network.mtu,
        "dns_domain": network.dns_domain,
        "hostname": attachment.instance.name,
        # Dual stack: the address (None where unknown: underlay) and how it is formed.
        "ipv6": attachment.ipv6,
        "ipv6_cidr": network.ipv6_cidr,
        "ipv6_mode": network.ipv6_mode,
        "vf": vf_spec(vf) if network.kind == NetworkKind.SRIOV else None,
        "overlay": overlay if network.kind == NetworkKind.OVERLAY else None,
    }


def _attachments(instance: Instance) -> list[Attachment]:
    return list(
        instance.attachments.select_related("network", "vf__pf", "instance").order_by("ifname")
    )


def instance_spec(
    instance: Instance,
    purpose: str,
    *,
    vfs: dict | None = None,
    context: dict | None = None,
    announce: bool = False,
    only: Iterable | None = None,
) -> dict[str, Any]:
    """The instance as its host must have it. `vfs` overrides attachment -> VF (the old
    VFs when unplugging a migration's source); `only` (attachment ids) lists just those
    attachments (a hot-plug's one interface)."""
    vfs = vfs or {}
    attachments = _attachments(instance)
    if only is not None:
        wanted = {str(pk) for pk in only}
        attachments = [a for a in attachments if str(a.pk) in wanted]
    overlays = {
        a.network_id: overlay_spec(a.network, instance.host)
        for a in attachments
        if a.network.kind == NetworkKind.OVERLAY and instance.host is not None
    }
    return {
        "instance_id": str(instance.pk),
        "name": instance.name,
        "kind": instance.kind,
        "tenant_id": str(instance.tenant_id),
        "generation": instance.generation,
        "announce": announce,
        "attachments": [
            attachment_spec(a, vfs.get(a.pk, a.vf), overlays.get(a.network_id)) for a in attachments
        ],
        "context": {"purpose": purpose, **(context or {})},
    }


@dataclass(frozen=True)
class ReservationScope:
    """What a refresh is about: the MACs a launch, hot-plug or deletion changed, and
    their instance's name (another instance's reservation may hold it as hostname)."""

    macs: tuple[str, ...]
    names: tuple[str, ...] = ()

    @classmethod
    def of(cls, attachments: QuerySet[Attachment]) -> ReservationScope:
        pairs = list(attachments.values_list("mac", "instance__name"))
        return cls(tuple(mac for mac, _ in pairs), tuple({name for _, name in pairs}))


def takes_partial_refreshes(server: DhcpServer) -> bool:
    """Reported running by an agent that lists `dhcp.partial` (an older agent would take
    a partial list for the whole one and drop the rest)."""
    return server.state == DhcpServerState.RUNNING and FEATURE_DHCP_PARTIAL in server.host.features


def dhcp_server_spec(
    server: DhcpServer, network: Network, scope: ReservationScope | None = None
) -> dict[str, Any]:
    """The server as the agent must run it, with every reservation or, given a `scope`,
    only its MACs' (`partial`: each MAC listed there and absent from `reservations` is
    removed). A launch's refresh thus costs the same on any size of network; a server
    the agent has not yet reported running, or run by an agent that does not list
    `dhcp.partial`, gets the full list."""
    partial = scope is not None and takes_partial_refreshes(server)
    reservations = dhcp_reservations(network, *((scope.macs, scope.names) if partial else ()))
    return {
        "network_id": str(server.network_key),
        "server_id": str(server.pk),
        "revision": server.revision,
        "cidr": network.cidr,
        "gateway": network.gateway,
        "server_ip": network.dhcp_server_ip,
        "ipam": network.ipam,
        "dns_domain": network.dns_domain or "ciao.local",
        "vlan": network.vlan or 0,
        "mtu": network.mtu,
        "mac": server.mac,
        "ipv6_cidr": network.ipv6_cidr,
        "ipv6_mode": network.ipv6_mode,
        "server_ipv6": network.dhcp_server_ipv6,
        "vf": vf_spec(server.vf),
        "overlay": (
            overlay_spec(network, server.host) if network.kind == NetworkKind.OVERLAY else None
        ),
        "reservations": reservations,
        **(
            {"partial": sorted({*scope.macs, *(r["mac"] for r in reservations)})} if partial else {}
        ),
    }


def removal_spec(server: DhcpServer) -> dict[str, Any]:
    return {"network_id": str(server.network_key), "vf": vf_spec(server.vf)}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def reconcile_plan(host_id, reported_owners: dict[str, str]) -> dict[str, Any]:
    """What a node must correct, judged from the owners it reported (`"pf/index" -> owner`).

    Only VFs the node itself reported are released, and each release names the owner it
    reported, so a VF claimed after the report can never be reset by this plan.
    """
    desired: dict[str, dict[str, Any]] = {}
    for a in Attachment.objects.filter(vf__pf__host_id=host_id).select_related("vf__pf", "network"):
        desired[f"{a.vf.pf.name}/{a.vf.index}"] = {
            "owner": str(a.pk),
            "mac": a.mac,
            "vlan": a.network.vlan or 0,
        }
    servers = DhcpServer.objects.filter(host_id=host_id, vf__isnull=False)
    for s in servers.select_related("vf__pf", "network"):
        desired[f"{s.vf.pf.name}/{s.vf.index}"] = {
            "owner": f"dhcp-{s.network_key}",
            "mac": s.mac,
            "vlan": (s.network.vlan or 0) if s.network else 0,
        }
    # A migrating instance keeps its source VFs until the target reports (make before
    # break): the migration itself releases them, never a reconcile.
    migrating = {
        str(pk)
        for pk in Attachment.objects.filter(
            pk__in=[o for o in reported_owners.values() if _is_uuid(o)],
            instance__state=InstanceState.MIGRATING,
        ).values_list("pk", flat=True)
    }
    release = [
        {"vf": key, "owner": owner}
        for key, owner in reported_owners.items()
        if desired.get(key, {}).get("owner") != owner and owner not in migrating
    ]
    configs = {
        key: want for key, want in desired.items() if reported_owners.get(key) == want["owner"]
    }
    return {"release": release, "configs": configs}


def managed(network: Network) -> bool:
    """Networks whose DHCP/DNS server we run: managed SR-IOV ones and tenant overlays."""
    return network.ipam in Ipam.MANAGED
