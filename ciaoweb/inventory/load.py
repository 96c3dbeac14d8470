"""Host.load: how many instances each host holds, the scheduler's ordering key.

The scheduler walks online hosts in (is_network_node, load, name) order on an index and
stops at the first one with the free VFs, so a placement costs the same with 1 or 1,000
hosts (a COUNT of every host's instances per placement did not).

This module is the only writer of `Host.load`. Every change of the set of instances on a
host calls it, in the transaction that makes the change, with an atomic `F()` update: the
counter commits or rolls back with the instance row. The changes are:

- an instance is created on a host: `arrive` (`scheduler.place(..., new_instance=True)`);
- it moves (migration retarget, rollback of a failed migration): `move`;
- its row is deleted (`finalize_instance_deletion`): `leave`.

`Host.save()` never writes the column, so a Host read earlier cannot put a stale count
back. Rows changed around the services (the admin, a hand-edited database) make the
counter drift; `drift()` shows it, `recount()` repairs it. A drifted counter only skews
the spreading order: capacity is always checked on the VF rows themselves.

Lock order. The updates lock host rows (FOR NO KEY UPDATE) until commit, so every
transaction takes its locks in one order: the instance, then the networks
(`lock_networks`), then host rows, then VF rows.
- Networks before hosts: `create_instance` and `finalize_instance_deletion` wait for a
  host row while they hold networks. That is safe only because `lock_networks` takes
  FOR NO KEY UPDATE: a migration step that holds host rows checks its rewritten
  attachments' foreign keys at COMMIT (deferred) with KEY SHARE on their network, which
  FOR UPDATE would make wait for the holder, itself waiting for the host row: a deadlock
  (tests/unit/test_scheduler.py reproduces it).
- Hosts before VFs: `register_inventory` locks its host, then saves VFs; a VF claimed
  before the host row could deadlock with it.
- Several hosts in name order, like `note_liveness`.
"""

from __future__ import annotations

from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Greatest

from ciaoweb.inventory.models import Host


def _add(host: Host, delta: int) -> None:
    # Never below zero: a counter that drifted low must not make a deletion fail.
    Host.objects.filter(pk=host.pk).update(load=Greatest(F("load") + delta, Value(0)))


def arrive(host: Host) -> None:
    """A new instance is placed on `host`."""
    _add(host, 1)


def leave(host: Host | None) -> None:
    """An instance on `host` is deleted."""
    if host is not None:
        _add(host, -1)


def move(source: Host | None, target: Host | None) -> None:
    """An instance moves from `source` to `target` (either may be None)."""
    if source is not None and target is not None and source.pk == target.pk:
        return
    changes = [(h, d) for h, d in ((source, -1), (target, 1)) if h is not None]
    for host, delta in sorted(changes, key=lambda change: change[0].name):
        _add(host, delta)


def instances_per_host(instance_model) -> Coalesce:
    """Each host's instance count, as a subquery over Host rows. Takes the model so that
    migration 0003 can run it on its historical one."""
    counted = (
        instance_model.objects.filter(host=OuterRef("pk"))
        .order_by()
        .values("host")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _truth() -> Coalesce:
    from ciaoweb.instances.models import Instance

    return instances_per_host(Instance)


def drift() -> dict[str, tuple[int, int]]:
    """{host name: (counter, instances)} for every host whose counter is wrong."""
    rows = Host.objects.annotate(truth=_truth()).exclude(load=F("truth"))
    return {h.name: (h.load, h.truth) for h in rows.order_by("name")}


def recount() -> int:
    """Set every host's counter from its instances; returns how many were wrong."""
    wrong = Host.objects.annotate(truth=_truth()).exclude(load=F("truth")).count()
    if wrong:
        Host.objects.update(load=_truth())
    return wrong
