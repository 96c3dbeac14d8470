"""Placement: a host that is online and has free VFs on every physnet the instance needs.

All of an instance's VFs come from one host. Compute hosts are tried least loaded first
(fewest instances), network nodes only when no compute host fits.
A VF is claimed with `SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1` on the free
VFs of the host's PFs (partial index `inventory_vf_free_by_pf`), so concurrent requests
take different VFs without waiting; a request that finds a host emptied by others under
its feet rolls the partial claim back and tries the next host.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from rest_framework.exceptions import ValidationError

from ciaoweb.core.exceptions import NoCapacity
from ciaoweb.instances.models import Instance
from ciaoweb.inventory.choices import HostState, VfState
from ciaoweb.inventory.models import Host, VirtualFunction

MAX_HOSTS_TRIED = 8

PhysnetNeeds = Counter  # physnet -> number of VFs


@dataclass
class Placement:
    host: Host
    vfs: dict[str, list[VirtualFunction]] = field(default_factory=dict)  # physnet -> claimed

    def take(self, physnet: str) -> VirtualFunction:
        return self.vfs[physnet].pop(0)


class _Short(Exception):
    """Raised inside a savepoint to roll back a partial claim."""


def _count(queryset: QuerySet, group_by: str) -> Subquery:
    counted = queryset.values(group_by).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _free_vfs(host_ref, physnet: str) -> QuerySet:
    return VirtualFunction.objects.filter(
        pf__host=host_ref, pf__physnet=physnet, state=VfState.FREE
    )


def candidate_hosts(needs: PhysnetNeeds, exclude: Iterable = ()) -> QuerySet:
    """Online hosts with enough free VFs on every needed physnet, least loaded first."""
    hosts = Host.objects.filter(state=HostState.ONLINE).exclude(pk__in=list(exclude))
    for position, (physnet, count) in enumerate(sorted(needs.items())):
        alias = f"free_{position}"
        hosts = hosts.annotate(
            **{alias: _count(_free_vfs(OuterRef("pk"), physnet), "pf__host")}
        ).filter(**{f"{alias}__gte": count})
    load = _count(Instance.objects.filter(host=OuterRef("pk")), "host")
    # Network nodes last: their VFs are what new networks' DHCP servers need.
    return hosts.annotate(load=load).order_by("is_network_node", "load", "name")


def _claim_one(host: Host, physnet: str) -> VirtualFunction | None:
    free = _free_vfs(host, physnet).order_by("index", "pf__name")
    if connection.features.has_select_for_update_skip_locked:
        free = free.select_for_update(skip_locked=True, of=("self",))
    # SQLite has no row locks: its single writer serializes whole transactions instead.
    return free.first()


def _claim_all(host: Host, needs: PhysnetNeeds) -> Placement:
    placement = Placement(host=host)
    for physnet, count in sorted(needs.items()):
        claimed = placement.vfs.setdefault(physnet, [])
        for _ in range(count):
            vf = _claim_one(host, physnet)
            if vf is None:
                raise _Short(physnet)
            vf.state = VfState.RESERVED
            vf.save(update_fields=["state", "updated"])
            claimed.append(vf)
    return placement


def describe(needs: PhysnetNeeds) -> str:
    if not needs:
        return "no online host"
    wanted = ", ".join(f"{n} free VF(s) on physnet {p}" for p, n in sorted(needs.items()))
    return f"no online host has {wanted}"


def check_host(host: Host, needs: PhysnetNeeds) -> None:
    """An explicitly chosen host must be online and have the VFs: else 400 on `host`."""
    if host.state != HostState.ONLINE:
        raise ValidationError({"host": [f"host {host.name} is {host.state}, not online"]})
    for physnet, count in sorted(needs.items()):
        free = _free_vfs(host, physnet).count()
        if free < count:
            message = f"host {host.name} has {free} free VF(s) on physnet {physnet}, needs {count}"
            raise ValidationError({"host": [message]})


def place(needs: PhysnetNeeds, host: Host | None = None, exclude: Iterable = ()) -> Placement:
    """Choose a host and claim (reserve) its VFs. Call inside a transaction."""
    if host is not None:
        check_host(host, needs)
        try:
            with transaction.atomic():
                return _claim_all(host, needs)
        except _Short as short:
            raise ValidationError(
                {"host": [f"host {host.name} has no free VF left on physnet {short}"]}
            ) from None
    tried = set(exclude)
    for _ in range(MAX_HOSTS_TRIED):
        candidate = candidate_hosts(needs, exclude=tried).first()
        if candidate is None:
            break
        try:
            with transaction.atomic():
                return _claim_all(candidate, needs)
        except _Short:
            tried.add(candidate.pk)
    raise NoCapacity(describe(needs))


def choose_host(needs: PhysnetNeeds, exclude: Iterable = ()) -> Host:
    """Pick a host without claiming anything (migration target)."""
    candidate = candidate_hosts(needs, exclude=exclude).first()
    if candidate is None:
        raise NoCapacity(describe(needs))
    return candidate
