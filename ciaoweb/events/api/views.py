from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.events.api.serializers import EventSerializer
from ciaoweb.events.filtersets import EventFilterSet
from ciaoweb.events.models import Event


@extend_schema_view(
    list=extend_schema(
        description=(
            "The audit log, newest first. A member sees its tenant's events; cluster-wide "
            "ones (hosts) are for cluster admins."
        )
    ),
)
class EventViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The audit log; members see their tenant's events, cluster-wide ones are admin-only."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
