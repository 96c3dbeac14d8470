from rest_framework import viewsets

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.events.api.serializers import EventSerializer
from ciaoweb.events.filtersets import EventFilterSet
from ciaoweb.events.models import Event


class EventViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The audit log; members see their tenant's events, cluster-wide ones are admin-only."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilterSet
