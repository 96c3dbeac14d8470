"""The cluster's state as Prometheus families, read from the database at scrape time.

One query per family, counted by the database (GROUP BY), so a scrape costs the same
few queries however big the cluster is. Every web process answers the same numbers:
scrape one of them (or all: they agree). Label sets that can be known are filled with
zeros, so a series does not vanish when its count drops to nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from ciaoweb.instances.choices import InstanceState
from ciaoweb.instances.models import Instance
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.networks.choices import LeaseState
from ciaoweb.networks.models import Lease
from ciaoweb.operations.choices import OperationKind, OperationState
from ciaoweb.operations.models import Operation
from ciaoweb.orchestration.choices import DhcpServerState

# Seconds from an operation's row being written to its end: a launch takes a few
# seconds, a migration more, an evacuation minutes.
OPERATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


def _states(choices: list[tuple[str, str]]) -> list[str]:
    return [value for value, _ in choices]


def instances() -> Metric:
    family = GaugeMetricFamily("ciao_instances", "Instances by state", labels=["state"])
    counts = dict(Instance.objects.order_by().values_list("state").annotate(n=Count("pk")))
    for state in _states(InstanceState.CHOICES):
        family.add_metric([state], counts.get(state, 0))
    return family


def vfs() -> Metric:
    family = GaugeMetricFamily(
        "ciao_vfs",
        "Virtual functions by host, physnet and state (free: schedulable; the other states "
        "are in use or on their way)",
        labels=["host", "physnet", "state"],
    )
    rows = (
        VirtualFunction.objects.order_by()
        .values_list("pf__host__name", "pf__physnet", "state")
        .annotate(n=Count("pk"))
    )
    counts = {(host, physnet, state): n for host, physnet, state, n in rows}
    for host, physnet in sorted({(host, physnet) for host, physnet, _ in counts}):
        for state in _states(VfState.CHOICES):
            family.add_metric([host, physnet, state], counts.get((host, physnet, state), 0))
    return family


def operations() -> Metric:
    family = GaugeMetricFamily(
        "ciao_operations", "Operations by kind and state", labels=["kind", "state"]
    )
    rows = Operation.objects.order_by().values_list("kind", "state").annotate(n=Count("pk"))
    counts = {(kind, state): n for kind, state, n in rows}
    kinds, states = _states(OperationKind.CHOICES), _states(OperationState.CHOICES)
    for kind, state in itertools.product(kinds, states):
        family.add_metric([kind, state], counts.get((kind, state), 0))
    return family


def operation_durations() -> Metric:
    """A histogram over every finished operation (created -> finished): cumulative like
    any Prometheus histogram, so `rate()` over it shows the recent ones."""
    family = HistogramMetricFamily(
        "ciao_operation_duration_seconds",
        "Finished operations, from their creation to their end, by kind and outcome",
        labels=["kind", "state"],
    )
    within = {
        f"le_{i}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
        for i, bound in enumerate(OPERATION_BUCKETS)
    }
    rows = (
        Operation.objects.filter(state__in=OperationState.FINISHED, finished__isnull=False)
        .order_by()
        .annotate(duration=F("finished") - F("created"))
        .values("kind", "state")
        .annotate(count=Count("pk"), total=Sum("duration"), **within)
    )
    by_labels = {(row["kind"], row["state"]): row for row in rows}
    for kind, state in itertools.product(_states(OperationKind.CHOICES), OperationState.FINISHED):
        row = by_labels.get((kind, state))
        if row is None:
            buckets = [(str(bound), 0) for bound in OPERATION_BUCKETS]
            family.add_metric([kind, state], [*buckets, ("+Inf", 0)], 0.0)
            continue
        buckets = [(str(bound), row[f"le_{i}"]) for i, bound in enumerate(OPERATION_BUCKETS)]
        total = row["total"].total_seconds() if row["total"] is not None else 0.0
        family.add_metric([kind, state], [*buckets, ("+Inf", row["count"])], total)
    return family


def leases() -> Metric:
    family = GaugeMetricFamily("ciao_leases", "DHCP leases by state", labels=["state"])
    counts = dict(Lease.objects.order_by().values_list("state").annotate(n=Count("pk")))
    for state in _states(LeaseState.CHOICES):
        family.add_metric([state], counts.get(state, 0))
    return family


def hosts() -> Iterator[Metric]:
    """Two families from one query: heartbeat age and who the host is."""
    age = GaugeMetricFamily(
        "ciao_host_heartbeat_age_seconds",
        "Seconds since the host's agent was last heard of (a host never heard of has none)",
        labels=["host"],
    )
    info = GaugeMetricFamily(
        "ciao_host_info",
        "One per host: its state and the ciaoweb version its agent reported",
        labels=["host", "state", "agent_version"],
    )
    now = timezone.now()
    rows = Host.objects.order_by("name").values_list("name", "state", "agent_version", "last_seen")
    for name, state, agent_version, last_seen in rows:
        info.add_metric([name, state, agent_version], 1)
        if last_seen is not None:
            # The controller worker's clock wrote last_seen: a skewed one is no age < 0.
            age.add_metric([name], max((now - last_seen).total_seconds(), 0.0))
    yield age
    yield info


def dhcp_servers() -> Metric:
    family = GaugeMetricFamily(
        "ciao_dhcp_servers",
        "Managed DHCP/DNS servers (dnsmasq) by the host they run on and their state",
        labels=["host", "state"],
    )
    # From the hosts (a LEFT JOIN): a host without a server shows zeros.
    rows = (
        Host.objects.order_by()
        .values_list("name", "dhcp_servers__state")
        .annotate(n=Count("dhcp_servers"))
    )
    counts: dict[str, dict[str, int]] = {}
    for host, state, n in rows:
        counts.setdefault(host, {})
        if state is not None:
            counts[host][state] = n
    for host in sorted(counts):
        for state in _states(DhcpServerState.CHOICES):
            family.add_metric([host, state], counts[host].get(state, 0))
    return family


class ClusterCollector:
    """Every family above, collected at each scrape."""

    def collect(self) -> Iterator[Metric]:
        yield instances()
        yield vfs()
        yield operations()
        yield operation_durations()
        yield leases()
        yield from hosts()
        yield dhcp_servers()

    def describe(self) -> list[Metric]:
        # Registering must not query the database (the registry would call collect()).
        return []
