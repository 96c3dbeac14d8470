"""Placement: a host that is online and has free VFs on every physnet the instance needs.

All of an instance's VFs come from one host. Compute hosts are tried least loaded first
(fewest instances), ties by name, network nodes only when no compute host fits.

The cost does not grow with the inventory: hosts are read in that order from the index
`inventory_host_placement` (state, is_network_node, load, name), where `load` is the
counter kept by `ciaoweb.inventory.load`, and the scan stops at the first host that has
the VFs. "At least n free VFs on physnet p" is an EXISTS over the partial index
`inventory_vf_free_by_pf` with OFFSET n-1: it reads n index entries, not a COUNT of the
host's VFs. (Only when most hosts are full does the scan walk past them, one short probe
each.)

A VF is claimed with `SELECT ... FOR UPDATE SKIP LOCKED LIMIT n` on the free VFs of the
host's PFs, so concurrent requests take different VFs without waiting; a request that
finds a host emptied by others under its feet rolls the partial claim back (savepoint)
and tries the next host.

Capabilities: `requires` (physnet -> optional PF knobs, see ciaoweb.inventory.
capabilities and ciaoweb.networks.validation.required_capabilities) leaves out the VFs of
PFs that report lacking one (False); a knob a PF has not reported does not exclude it.
None of today's networks needs a knob, so callers pass nothing and the queries are as
above.
"""

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from ciaoweb.core.exceptions import Conflict, InvalidInput, NoCapacity
from ciaoweb.inventory import load
from ciaoweb.inventory.capabilities import LABELS
from ciaoweb.inventory.choices import HostState, VfState
from ciaoweb.inventory.models import Host, VirtualFunction

MAX_HOSTS_TRIED = 8

PhysnetNeeds = Counter  # physnet -> number of VFs
Requires = Mapping[str, Collection[str]]  # physnet -> knobs the VFs' PFs must not lack


@dataclass
class Placement:
    host: Host
    vfs: dict[str, list[VirtualFunction]] = field(default_factory=dict)  # physnet -> claimed

    def take(self, physnet: str) -> VirtualFunction:
        return self.vfs[physnet].pop(0)


class _Short(Exception):
    """Raised inside a savepoint to roll back a partial claim."""

    def __init__(self, physnet: str):
        super().__init__(physnet)
        self.physnet = physnet


def requirements(networks: Iterable) -> dict[str, set[str]]:
    """`requires` for the sriov networks an instance attaches to: per physnet, the union
    of their `required_capabilities` (physnets needing none are left out)."""
    from ciaoweb.networks.choices import NetworkKind
    from ciaoweb.networks.validation import required_capabilities

    found: dict[str, set[str]] = {}
    for network in networks:
        if network.kind == NetworkKind.SRIOV and (knobs := required_capabilities(network)):
            found.setdefault(network.physnet, set()).update(knobs)
    return found


def _knobs(requires: Requires | None, physnet: str) -> list[str]:
    return sorted((requires or {}).get(physnet, ()))


def _free_vfs(host_ref, physnet: str, knobs: Collection[str] = ()) -> QuerySet:
    vfs = VirtualFunction.objects.filter(
        pf__host_id=host_ref, pf__physnet=physnet, state=VfState.FREE
    )
    for knob in knobs:
        # Not "capabilities.knob != false": a missing key is NULL there, and unknown must
        # not exclude a PF.
        vfs = vfs.filter(
            ~Q(pf__capabilities__has_key=knob) | Q(**{f"pf__capabilities__{knob}": True})
        )
    return vfs


def _has_free(physnet: str, count: int, knobs: Collection[str] = ()) -> Exists:
    """The host has at least `count` free VFs on `physnet`: the `count`-th one exists."""
    return Exists(_free_vfs(OuterRef("pk"), physnet, knobs)[count - 1 : count])


def candidate_hosts(
    needs: PhysnetNeeds, exclude: Iterable = (), *, requires: Requires | None = None
) -> QuerySet:
    """Online hosts with enough free VFs on every needed physnet, least loaded first."""
    hosts = Host.objects.filter(state=HostState.ONLINE)
    excluded = list(exclude)
    if excluded:
        hosts = hosts.exclude(pk__in=excluded)
    for physnet, count in sorted(needs.items()):
        hosts = hosts.filter(_has_free(physnet, count, _knobs(requires, physnet)))
    # Network nodes last: their VFs are what new networks' DHCP servers need.
    return hosts.order_by("is_network_node", "load", "name")


def _claim_all(
    host: Host, needs: PhysnetNeeds, new_instance: bool, requires: Requires | None = None
) -> Placement:
    if new_instance:
        load.arrive(host)  # the host row before any VF row (see ciaoweb.inventory.load)
    placement = Placement(host=host)
    for physnet, count in sorted(needs.items()):
        free = _free_vfs(host.pk, physnet, _knobs(requires, physnet)).order_by("index", "pf__name")
        if connection.features.has_select_for_update_skip_locked:
            free = free.select_for_update(skip_locked=True, of=("self",))
        # SQLite has no row locks: its single writer serializes whole transactions instead.
        vfs = list(free[:count])
        if len(vfs) < count:
            raise _Short(physnet)
        placement.vfs[physnet] = vfs
    claimed = [vf for vfs in placement.vfs.values() for vf in vfs]
    if claimed:
        now = timezone.now()
        VirtualFunction.objects.filter(pk__in=[vf.pk for vf in claimed]).update(
            state=VfState.RESERVED, updated=now
        )
        for vf in claimed:
            vf.state, vf.updated = VfState.RESERVED, now
    return placement


def _with(knobs: Collection[str]) -> str:
    if not knobs:
        return ""
    return " on a PF supporting " + ", ".join(LABELS.get(k, k) for k in sorted(knobs))


def describe(needs: PhysnetNeeds, requires: Requires | None = None) -> str:
    if not needs:
        return "no online host"
    wanted = ", ".join(
        f"{n} free VF(s) on physnet {p}{_with(_knobs(requires, p))}"
        for p, n in sorted(needs.items())
    )
    return f"no online host has {wanted}"


def _check_online(host: Host) -> None:
    if host.state != HostState.ONLINE:
        raise InvalidInput({"host": [f"host {host.name} is {host.state}, not online"]})


def _check_free(host: Host, needs: PhysnetNeeds, requires: Requires | None = None) -> None:
    for physnet, count in sorted(needs.items()):
        knobs = _knobs(requires, physnet)
        free = _free_vfs(host.pk, physnet, knobs).count()
        if free < count:
            message = (
                f"host {host.name} has {free} free VF(s) on physnet {physnet}{_with(knobs)}, "
                f"needs {count}"
            )
            raise InvalidInput({"host": [message]})


def check_host(host: Host, needs: PhysnetNeeds, *, requires: Requires | None = None) -> None:
    """An explicitly chosen host must be online and have the VFs, else InvalidInput on
    `host` (a 400)."""
    _check_online(host)
    _check_free(host, needs, requires)


def place(
    needs: PhysnetNeeds,
    host: Host | None = None,
    exclude: Iterable = (),
    *,
    new_instance: bool = False,
    requires: Requires | None = None,
) -> Placement:
    """Choose a host and claim (reserve) its VFs. Call inside a transaction.

    `new_instance`: the VFs are for an instance that the caller creates on the chosen
    host; its load counter goes up with the claim (and is undone with it)."""
    if host is not None:
        _check_online(host)
        try:
            with transaction.atomic():
                return _claim_all(host, needs, new_instance, requires)
        except _Short as short:
            # Counted only on failure, for the message: the host lacks the VFs, or
            # concurrent requests hold the ones it has.
            _check_free(host, needs, requires)
            wanted = f"physnet {short.physnet}{_with(_knobs(requires, short.physnet))}"
            raise InvalidInput(
                {"host": [f"host {host.name} has no free VF left on {wanted}"]}
            ) from None
    tried = set(exclude)
    for _ in range(MAX_HOSTS_TRIED):
        candidate = _next_candidate(needs, tried, new_instance, requires)
        if candidate is None:
            break
        try:
            with transaction.atomic():
                return _claim_all(candidate, needs, new_instance, requires)
        except _Short:
            tried.add(candidate.pk)
    raise NoCapacity(describe(needs, requires))


def claim_on(host: Host, needs: PhysnetNeeds, *, requires: Requires | None = None) -> Placement:
    """Claim (reserve) VFs on this very host, for an instance that runs there (hot-plug).
    The instance cannot move for them, so a host without them is no bad request but a
    lack of capacity: NoCapacity (409) naming the host and the physnet; a host that is
    not online is a Conflict (409). Call inside a transaction."""
    if host.state != HostState.ONLINE:
        raise Conflict(f"host {host.name} is {host.state}, not online: nothing can be plugged")
    try:
        with transaction.atomic():
            return _claim_all(host, needs, False, requires)
    except _Short as short:
        wanted = f"physnet {short.physnet}{_with(_knobs(requires, short.physnet))}"
        raise NoCapacity(
            f"host {host.name} has no free VF left on {wanted}; a hot-plugged interface "
            "comes from the instance's own host (migrate it to a host with one)"
        ) from None


def _next_candidate(
    needs: PhysnetNeeds, tried: set, new_instance: bool, requires: Requires | None = None
) -> Host | None:
    """The first candidate host; for a new instance, the first one that no concurrent
    creation is placing on (its load update holds the host row until commit): skipped,
    not waited for, so a burst spreads over hosts instead of queueing on one row. Only
    when every candidate is busy does it wait for the first."""
    hosts = candidate_hosts(needs, exclude=tried, requires=requires)
    if new_instance and connection.features.has_select_for_update_skip_locked:
        unlocked = hosts.select_for_update(no_key=True, skip_locked=True, of=("self",))
        if (host := unlocked.first()) is not None:
            return host
    return hosts.first()


def choose_host(
    needs: PhysnetNeeds, exclude: Iterable = (), *, requires: Requires | None = None
) -> Host:
    """Pick a host without claiming anything (migration target)."""
    candidate = candidate_hosts(needs, exclude=exclude, requires=requires).first()
    if candidate is None:
        raise NoCapacity(describe(needs, requires))
    return candidate
