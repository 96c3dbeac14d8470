"""Primary overlay networks: one VXLAN segment per tenant across all hosts."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from ciaoweb.core.allocation import first_free_integer
from ciaoweb.inventory.models import Host
from ciaoweb.networks.models import Network

from .models import OverlaySegment


def segment_for(network: Network) -> OverlaySegment:
    """The network's segment, allocating the lowest free VNI on first use."""
    for _ in range(5):
        existing = OverlaySegment.objects.filter(network=network).first()
        if existing is not None:
            return existing
        vni = first_free_integer(
            OverlaySegment.objects.all(), "vni", OverlaySegment.VNI_MIN, OverlaySegment.VNI_MAX
        )
        try:
            with transaction.atomic():
                return OverlaySegment.objects.create(network=network, vni=vni)
        except IntegrityError:  # another request took this VNI or made the segment: look again
            continue
    raise RuntimeError(f"could not allocate a VNI for {network}")


def vtep_addresses(exclude_host: Host | None = None) -> list[str]:
    """Tunnel endpoints of every registered host (head-end replication list)."""
    hosts = Host.objects.exclude(mgmt_address=None)
    if exclude_host is not None:
        hosts = hosts.exclude(pk=exclude_host.pk)
    return sorted(hosts.values_list("mgmt_address", flat=True))


def overlay_spec(network: Network, host: Host) -> dict:
    return {"vni": segment_for(network).vni, "peers": vtep_addresses(exclude_host=host)}
