from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.networks.models import Network
from ciaoweb.tenancy.access import can_manage_members
from ciaoweb.tenancy.api.serializers import (
    MemberSerializer,
    MembershipSerializer,
    TenantSerializer,
)
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.services import add_member, create_tenant


class TenantViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """Members see their own tenant; only cluster admins create, change or delete."""

    queryset = Tenant.objects.all()
    serializer_class = TenantSerializer
    tenant_lookup = "pk"
    admin_only_writes = True
    member_actions = ("members",)

    def perform_create(self, serializer):
        serializer.instance = create_tenant(serializer.validated_data["name"])

    @transaction.atomic
    def perform_update(self, serializer):
        tenant = serializer.save()
        record(EventKind.TENANT_UPDATED, tenant, f"tenant {tenant} updated")

    @transaction.atomic
    def perform_destroy(self, instance):
        # Its networks first, in id order, as `delete_network` and the lease-event handler
        # lock them before their leases: the cascade alone deletes leases before networks,
        # which deadlocked with a lease event of the same network.
        list(Network.objects.select_for_update().filter(tenant=instance).order_by("pk"))
        record(EventKind.TENANT_DELETED, instance, f"tenant {instance} deleted", tenant=None)
        instance.delete()

    @extend_schema(request=MemberSerializer, responses=MembershipSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def members(self, request, pk=None):
        """List members; POST creates or adds a user (cluster admins and tenant admins)."""
        tenant = self.get_object()
        if request.method == "GET":
            memberships = tenant.memberships.select_related("user").order_by("user__username")
            return Response(MembershipSerializer(memberships, many=True).data)
        if not can_manage_members(request.user, tenant):
            raise PermissionDenied("only cluster administrators and tenant admins add members")
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        membership = add_member(tenant, data["username"], data.get("password"), data["role"])
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)
