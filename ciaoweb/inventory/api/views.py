from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.core.credentials import agent_broker_user
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.inventory.api.serializers import (
    EnrolledHostSerializer,
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
from ciaoweb.inventory.services import enrol_host, evacuate_host, restore_host


@extend_schema_view(
    list=extend_schema(description="Cluster admins only."),
    retrieve=extend_schema(description="Cluster admins only."),
    update=extend_schema(
        description="Cluster admins only. The state changes through "
        "heartbeats and evacuate/restore only."
    ),
    partial_update=extend_schema(description="Cluster admins only."),
    destroy=extend_schema(description="Cluster admins only. 409 while instances run there."),
)
class HostViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """Cluster admins only. Creating a host enrols it: the answer carries the host's
    credential, once (its agent's `--credential-file`); nothing else ever shows it."""

    # Each host's DHCP servers with their networks' names, in two queries for any page.
    queryset = Host.objects.prefetch_related("dhcp_servers__network")
    serializer_class = HostSerializer
    filterset_class = HostFilterSet
    admin_only = True
    tenant_lookup = None

    @extend_schema(
        summary="Enrol a host",
        description=(
            "Cluster admins only. The answer carries the host's agent credential, once: "
            "store it as the agent's `--credential-file` (nothing shows it again)."
        ),
        request=HostSerializer,
        responses={201: EnrolledHostSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        host, secret = enrol_host(data["name"], bool(data.get("is_network_node", False)))
        return Response(enrolled(host, secret), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Issue a new agent credential",
        description="Cluster admins only. The old credential stops working at once.",
        request=None,
        responses=EnrolledHostSerializer,
    )
    @action(detail=True, methods=["post"])
    def credential(self, request, pk=None):
        """Issue a new credential (the old one stops working at once)."""
        host, secret = enrol_host(self.get_object().name)
        return Response(enrolled(host, secret))

    @transaction.atomic
    def perform_update(self, serializer):
        host = serializer.save()
        record(EventKind.HOST_UPDATED, host, f"host {host} updated")

    @transaction.atomic
    def perform_destroy(self, instance):
        record(EventKind.HOST_DELETED, instance, f"host {instance} deleted")
        instance.delete()  # refused (409) while instances run there

    @extend_schema(
        summary="Evacuate a host",
        description=(
            "Cluster admins only. Puts the host in maintenance (no new instances) and "
            "migrates its instances away: one `evacuate` operation, a migration per instance."
        ),
        request=None,
        responses=HostSerializer,
    )
    @action(detail=True, methods=["post"])
    def evacuate(self, request, pk=None):
        """Maintenance: no new instances; orchestration migrates the running ones away."""
        return Response(HostSerializer(evacuate_host(self.get_object())).data)

    @extend_schema(
        summary="Restore a host",
        description="Cluster admins only. Takes the host out of maintenance.",
        request=None,
        responses=HostSerializer,
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        return Response(HostSerializer(restore_host(self.get_object())).data)


def enrolled(host: Host, secret: str) -> dict:
    return EnrolledHostSerializer(
        {
            **HostSerializer(host).data,
            "credential": {"node": host.name, "secret": secret},
            "broker_user": agent_broker_user(host.name),
        }
    ).data


_free_vf_count = (
    VirtualFunction.objects.filter(pf=OuterRef("pk"), state=VfState.FREE)
    .order_by()
    .values("pf")
    .annotate(n=Count("pk"))
    .values("n")
)


@extend_schema_view(
    list=extend_schema(description="Cluster admins only. By host and name."),
    retrieve=extend_schema(description="Cluster admins only."),
)
class PhysicalFunctionViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    # A correlated count per PF on the page, not a join of every VF grouped by PF: with
    # 100,000 VFs the join cost 160 ms a page (and its COUNT for the pagination as much).
    queryset = (
        PhysicalFunction.objects.select_related("host")
        .annotate(free_vfs=Coalesce(Subquery(_free_vf_count), 0))
        .order_by("host__name", "name")
    )
    serializer_class = PhysicalFunctionSerializer
    filterset_class = PhysicalFunctionFilterSet
    admin_only = True
    tenant_lookup = None


@extend_schema_view(
    list=extend_schema(description="Cluster admins only."),
    retrieve=extend_schema(description="Cluster admins only."),
)
class VirtualFunctionViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    queryset = VirtualFunction.objects.select_related("pf", "attachment")
    serializer_class = VirtualFunctionSerializer
    filterset_class = VirtualFunctionFilterSet
    admin_only = True
    tenant_lookup = None
