"""Operations as a timeline, like Nova's instance actions: each operation (newest first)
with its steps, the `operation.updated` events recorded on it (oldest first)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest

from ciaoweb.dashboard.api_bridge import visible
from ciaoweb.events.api.views import EventViewSet
from ciaoweb.events.models import Event
from ciaoweb.inventory.models import Host
from ciaoweb.operations.api.views import OperationViewSet
from ciaoweb.operations.choices import OperationKind, OperationState
from ciaoweb.operations.models import Operation

# An instance page shows this many operations, the newest.
TIMELINE_LENGTH = 20


@dataclass
class TimelineEntry:
    operation: Operation
    steps: list[Event] = field(default_factory=list)


def operations(request: HttpRequest) -> QuerySet:
    """The operations the user may see (the API's scoping), newest first."""
    return visible(OperationViewSet, request).select_related("host", "source_host", "target_host")


def timeline(request: HttpRequest, chosen: QuerySet, limit: int = TIMELINE_LENGTH) -> list:
    """`chosen` operations (from `operations()`), newest first, each with its steps."""
    entries = [TimelineEntry(op) for op in chosen.order_by("-created")[:limit]]
    by_id = {entry.operation.pk: entry for entry in entries}
    events = (
        visible(EventViewSet, request)
        .filter(object_type=Operation._meta.model_name, object_id__in=list(by_id))
        .order_by("created")
    )
    for event in events:
        by_id[event.object_id].steps.append(event)
    return entries


def latest_host_operations(request: HttpRequest, hosts: list) -> dict:
    """{host id: its latest evacuate or restore, with `children_total`, `children_succeeded`
    and `children_failed` (the child migrations of an evacuation)}."""
    latest = (
        operations(request)
        .filter(host=OuterRef("pk"), kind__in=(OperationKind.EVACUATE, OperationKind.RESTORE))
        .order_by("-created")
        .values("pk")[:1]
    )
    ids = [
        pk
        for pk in Host.objects.filter(pk__in=[h.pk for h in hosts])
        .annotate(latest=Subquery(latest))
        .values_list("latest", flat=True)
        if pk is not None
    ]
    chosen = Operation.objects.filter(pk__in=ids).annotate(
        children_total=Count("children"),
        children_succeeded=Count("children", filter=Q(children__state=OperationState.SUCCEEDED)),
        children_failed=Count("children", filter=Q(children__state=OperationState.FAILED)),
    )
    return {op.host_id: op for op in chosen}
