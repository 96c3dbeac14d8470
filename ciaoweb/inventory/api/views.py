from django.db import transaction
from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.inventory.api.serializers import (
    HostSerializer,
    PhysicalFunctionSerializer,
    VirtualFunctionSerializer,
)
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.filtersets import (
    HostFilterSet,
    PhysicalFunctionFilterSet,
    VirtualFunctionFilterSet,
)
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction
from ciaoweb.inventory.services import evacuate_host, restore_host


class HostViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """Cluster admins only. Agents register hosts; admins may pre-create or rename them."""

    queryset = Host.objects.all()
    serializer_class = HostSerializer
    filterset_class = HostFilterSet
    admin_only = True
    tenant_lookup = None

    @transaction.atomic
    def perform_create(self, serializer):
        host = serializer.save()
        record(EventKind.HOST_CREATED, host, f"host {host} created")

    @transaction.atomic
    def perform_update(self, serializer):
        host = serializer.save()
        record(EventKind.HOST_UPDATED, host, f"host {host} updated")

    @transaction.atomic
    def perform_destroy(self, instance):
        record(EventKind.HOST_DELETED, instance, f"host {instance} deleted")
        instance.delete()  # refused (409) while instances run there

    @extend_schema(request=None, responses=HostSerializer)
    @action(detail=True, methods=["post"])
    def evacuate(self, request, pk=None):
        """Maintenance: no new instances; orchestration migrates the running ones away."""
        return Response(HostSerializer(evacuate_host(self.get_object())).data)

    @extend_schema(request=None, responses=HostSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        return Response(HostSerializer(restore_host(self.get_object())).data)


class PhysicalFunctionViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    # Explicit order: Meta.ordering does not apply to an aggregating query.
    queryset = (
        PhysicalFunction.objects.select_related("host")
        .annotate(free_vfs=Count("vfs", filter=Q(vfs__state=VfState.FREE)))
        .order_by("host__name", "name")
    )
    serializer_class = PhysicalFunctionSerializer
    filterset_class = PhysicalFunctionFilterSet
    admin_only = True
    tenant_lookup = None


class VirtualFunctionViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = VirtualFunction.objects.select_related("pf", "attachment")
    serializer_class = VirtualFunctionSerializer
    filterset_class = VirtualFunctionFilterSet
    admin_only = True
    tenant_lookup = None
