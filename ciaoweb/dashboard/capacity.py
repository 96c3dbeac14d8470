"""VF usage figures for the overview and hosts pages (bars: used of total)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from ciaoweb.instances.models import Attachment
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import PhysicalFunction
from ciaoweb.networks.choices import NetworkKind
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.quotas import QUOTAS, limits, usage


@dataclass(frozen=True)
class Usage:
    label: str
    used: int
    total: int

    @property
    def percent(self) -> int:
        """The bar's fill, at most full (a quota lowered below its use is over 100%)."""
        if not self.total:
            return 100 if self.used else 0
        return min(100, round(100 * self.used / self.total))

    @property
    def over(self) -> bool:
        return self.used >= self.total

    @property
    def free(self) -> int:
        return self.total - self.used


def annotate_vf_counts(pfs: QuerySet) -> QuerySet:
    """Each PF with `vf_count` and `free_count` (an `error` VF is never free)."""
    return pfs.annotate(
        vf_count=Count("vfs", distinct=True),
        free_count=Count("vfs", filter=Q(vfs__state=VfState.FREE), distinct=True),
    )


def usage_per_pf(pfs: QuerySet) -> dict[object, list[Usage]]:
    """{host_id: [Usage per PF]} for the given PFs."""
    by_host: dict[object, list[Usage]] = {}
    for pf in annotate_vf_counts(pfs).order_by("host__name", "name"):
        by_host.setdefault(pf.host_id, []).append(
            Usage(f"{pf.name} ({pf.physnet})", pf.vf_count - pf.free_count, pf.vf_count)
        )
    return by_host


def usage_per_physnet(pfs: QuerySet | None = None) -> list[Usage]:
    """Cluster-wide VF usage per physnet."""
    pfs = pfs if pfs is not None else PhysicalFunction.objects.all()
    totals: dict[str, list[int]] = {}
    for pf in annotate_vf_counts(pfs):
        used_total = totals.setdefault(pf.physnet, [0, 0])
        used_total[0] += pf.vf_count - pf.free_count
        used_total[1] += pf.vf_count
    return [Usage(physnet, used, total) for physnet, (used, total) in sorted(totals.items())]


def tenant_vfs_per_physnet(tenant: Tenant, physnets: set[str]) -> list[Usage]:
    """A member's view of VF use: the VFs its own tenant holds per physnet (one per
    attachment on an SR-IOV network, as the `vfs` quota counts them) against that quota,
    for the physnets it holds VFs on or has networks on. Nothing of other tenants' use
    or of the cluster's capacity (PFs and VFs are admin-only collections)."""
    rows = (
        Attachment.objects.filter(instance__tenant=tenant, network__kind=NetworkKind.SRIOV)
        .order_by()
        .values("network__physnet")
        .annotate(n=Count("pk"))
    )
    held = {row["network__physnet"]: row["n"] for row in rows}
    allowed = limits(tenant)["vfs"]
    names = sorted((set(physnets) | set(held)) - {""})
    return [Usage(physnet, held.get(physnet, 0), allowed) for physnet in names]


QUOTA_LABELS = {"networks": "Networks", "instances": "Instances", "vfs": "VFs"}


def quota_usage(tenant: Tenant) -> list[Usage]:
    """The tenant's use of each quota against its limit (`tenants/{id}/quota/`)."""
    allowed, used = limits(tenant), usage(tenant)
    return [Usage(QUOTA_LABELS[name], used[name], allowed[name]) for name in QUOTAS]
