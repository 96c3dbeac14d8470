from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.tenancy.access import can_manage_members, is_cluster_admin
from ciaoweb.tenancy.api.serializers import (
    MemberSerializer,
    MembershipSerializer,
    QuotaSerializer,
    TenantSerializer,
)
from ciaoweb.tenancy.filtersets import TenantFilterSet
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.quotas import quota_of, set_quota
from ciaoweb.tenancy.services import add_member, create_tenant, delete_tenant


@extend_schema_view(
    list=extend_schema(description="Cluster admins see every tenant, a member its own."),
    create=extend_schema(
        description="Cluster admins only. The tenant comes with its primary overlay network "
        "`default`."
    ),
    update=extend_schema(description="Cluster admins only."),
    partial_update=extend_schema(description="Cluster admins only."),
    destroy=extend_schema(
        description="Cluster admins only. 409 while the tenant has instances; its networks "
        "are deleted with it."
    ),
)
class TenantViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """Members see their own tenant; only cluster admins create, change or delete."""

    queryset = Tenant.objects.all()
    serializer_class = TenantSerializer
    filterset_class = TenantFilterSet
    tenant_lookup = "pk"
    admin_only_writes = True
    member_actions = ("members", "quota")

    def perform_create(self, serializer):
        serializer.instance = create_tenant(serializer.validated_data["name"])

    @transaction.atomic
    def perform_update(self, serializer):
        tenant = serializer.save()
        record(EventKind.TENANT_UPDATED, tenant, f"tenant {tenant} updated")

    def perform_destroy(self, instance):
        # 409 while it has instances; its networks go through the network deletion, so
        # their DHCP servers are removed and their VFs reset (never leaked).
        delete_tenant(instance)

    @extend_schema(
        methods=["GET"],
        summary="List a tenant's members",
        description="By username. The tenant's members and cluster admins.",
        request=None,
        responses=MembershipSerializer(many=True),
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a member to a tenant",
        description=(
            "Creates the user (a password is then required and must pass the password "
            "validators) or adds an existing user that belongs to no tenant; for one of the "
            "tenant's members, sets its role. A user belongs to one tenant. Cluster admins, "
            "and the tenant's admins (who may only create users or change their own "
            "members' roles)."
        ),
        request=MemberSerializer,
        responses={201: MembershipSerializer},
    )
    # Paged, but none of the tenant list's filters apply to memberships (nor in the schema).
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def members(self, request, pk=None):
        """GET: a page of memberships, like every list; POST: 201 with the one membership."""
        tenant = self.get_object()
        if request.method == "GET":
            memberships = tenant.memberships.select_related("user").order_by("user__username")
            page = self.paginate_queryset(memberships)
            return self.get_paginated_response(MembershipSerializer(page, many=True).data)
        if not can_manage_members(request.user, tenant):
            raise PermissionDenied("only cluster administrators and tenant admins add members")
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        membership = add_member(
            tenant,
            data["username"],
            data.get("password"),
            data["role"],
            by_cluster_admin=is_cluster_admin(request.user),
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        summary="Show a tenant's quota",
        description="Its limits and what it uses. The tenant's members and cluster admins.",
        request=None,
        responses=QuotaSerializer,
    )
    @extend_schema(
        methods=["PUT"],
        summary="Set a tenant's quota",
        description="Every limit (cluster admins only). A limit below the current use takes "
        "nothing away: the next creation is refused (409).",
        request=QuotaSerializer,
        responses=QuotaSerializer,
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Change some of a tenant's limits",
        description="Cluster admins only.",
        request=QuotaSerializer,
        responses=QuotaSerializer,
    )
    @action(detail=True, methods=["get", "put", "patch"])
    def quota(self, request, pk=None):
        """The tenant's limits and use (its members and cluster admins); PUT sets every
        limit, PATCH some (cluster admins only)."""
        tenant = self.get_object()  # another tenant's: 404
        if request.method != "GET":
            if not is_cluster_admin(request.user):
                raise PermissionDenied("only cluster administrators change quotas")
            serializer = QuotaSerializer(data=request.data, partial=request.method == "PATCH")
            serializer.is_valid(raise_exception=True)
            tenant = set_quota(tenant, dict(serializer.validated_data))
        return Response(QuotaSerializer(quota_of(tenant)).data)
