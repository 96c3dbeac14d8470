"""A network's free addresses as ranges (FreeIPRange rows), so that taking the lowest one
reads a single row however full the network is (Neutron's old IPAvailabilityRange).

Invariant: the union of a network's ranges is its usable host range (network and
broadcast addresses excluded) minus the `ip_int` of its IPAllocation rows, and the ranges
are disjoint. Callers hold the network's row lock (`ipam.lock_networks`), which
serializes every change to one network's ranges.

Only the network's fields and its `free_ranges` / `allocations` related managers are
used, never a model import: migration 0003 runs `rebuild_free_ranges` on historical
models.
"""

import ipaddress
from typing import TYPE_CHECKING

from django.db import connections
from django.db.models import Exists, OuterRef

if TYPE_CHECKING:  # only for hints: the functions also take historical Network models
    from ciaoweb.networks.models import Network


def usable_range(cidr: str) -> tuple[int, int]:
    """First and last usable address as integers; first > last when there is none."""
    net = ipaddress.IPv4Network(cidr)
    return int(net.network_address) + 1, int(net.broadcast_address) - 1


def rebuild_free_ranges(network: "Network") -> None:
    """Recompute the network's ranges from its allocations, in one INSERT ... SELECT: for
    taken addresses t (plus sentinels just outside the host range), every gap to the
    next taken one, lead(t) - t > 1, is the free range [t + 1, lead(t) - 1]. For after
    bulk changes to IPAllocation rows that bypassed `ipam`, and for a CIDR change."""
    ranges, allocations = network.free_ranges.model, network.allocations.model
    connection = connections[network._state.db or ranges.objects.db]
    q = connection.ops.quote_name
    network_column = q(ranges._meta.get_field("network").column)
    allocation_network_column = q(allocations._meta.get_field("network").column)
    low, high = usable_range(network.cidr)
    network_id = ranges._meta.get_field("network").get_db_prep_value(network.pk, connection)
    network.free_ranges.all().delete()
    sql = f"""
        INSERT INTO {q(ranges._meta.db_table)} ({network_column}, {q("first")}, {q("last")})
        SELECT %s, ip + 1, next_ip - 1 FROM (
            SELECT ip, LEAD(ip) OVER (ORDER BY ip) AS next_ip FROM (
                SELECT {q("ip_int")} AS ip FROM {q(allocations._meta.db_table)}
                WHERE {allocation_network_column} = %s AND {q("ip_int")} BETWEEN %s AND %s
                UNION ALL SELECT CAST(%s AS BIGINT)
                UNION ALL SELECT CAST(%s AS BIGINT)
            ) AS taken
        ) AS gaps
        WHERE next_ip - ip > 1
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [network_id, network_id, low, high, low - 1, high + 1])


def pop_lowest(network: "Network") -> tuple[int, bool] | None:
    """Remove the lowest free address from the ranges; returns it with whether the ledger
    already has it (drift: the caller drops it and asks again), or None when none is free.
    The drift check rides in the same query: two queries on the ranges, however full."""
    taken = network.allocations.filter(ip_int=OuterRef("first"))
    row = (
        network.free_ranges.select_for_update()
        .annotate(taken=Exists(taken))
        .order_by("first")
        .first()
    )
    if row is None:
        return None
    _shrink_or_delete(network, row, first=row.first + 1, last=row.last)
    return row.first, row.taken


def take(network: "Network", ip: int) -> bool:
    """Remove `ip` from the ranges, splitting the range that holds it; False if none did."""
    row = network.free_ranges.select_for_update().filter(first__lte=ip).order_by("-first").first()
    if row is None or row.last < ip:
        return False
    if ip == row.first:
        _shrink_or_delete(network, row, first=ip + 1, last=row.last)
    else:
        if ip < row.last:  # inside: the part above `ip` becomes a range of its own
            network.free_ranges.create(first=ip + 1, last=row.last)
        _shrink_or_delete(network, row, first=row.first, last=ip - 1)
    return True


def give_back(network: "Network", ip: int) -> None:
    """Return `ip` to the ranges, merged with the ranges that end just below or start just
    above it. A no-op outside the host range or when `ip` is free already."""
    low, high = usable_range(network.cidr)
    if not low <= ip <= high:
        return
    free = network.free_ranges.select_for_update()
    below = free.filter(first__lte=ip).order_by("-first").first()
    if below is not None and below.last >= ip:
        return
    above = free.filter(first=ip + 1).first()
    below = below if below is not None and below.last == ip - 1 else None
    if below is not None:
        last = above.last if above is not None else ip
        if above is not None:
            network.free_ranges.filter(pk=above.pk).delete()
        network.free_ranges.filter(pk=below.pk).update(last=last)
    elif above is not None:
        network.free_ranges.filter(pk=above.pk).update(first=ip)
    else:
        network.free_ranges.create(first=ip, last=ip)


def _shrink_or_delete(network: "Network", row, first: int, last: int) -> None:
    if first > last:
        network.free_ranges.filter(pk=row.pk).delete()
    else:
        network.free_ranges.filter(pk=row.pk).update(first=first, last=last)
