from django.db.models import Q
from rest_framework import viewsets
from rest_framework.exceptions import PermissionDenied

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.networks.api.serializers import LeaseSerializer, NetworkSerializer
from ciaoweb.networks.filtersets import LeaseFilterSet, NetworkFilterSet
from ciaoweb.networks.models import Lease, Network
from ciaoweb.networks.services import delete_network


class NetworkViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """Members see their tenant's networks and the shared ones, and change their own."""

    queryset = Network.objects.select_related("tenant")
    serializer_class = NetworkSerializer
    filterset_class = NetworkFilterSet

    def shared_q(self, tenant):
        return Q(shared=True)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.action == "create" and not self.is_admin:
            context["tenant"] = self.requesting_tenant()
        return context

    def _deny_foreign_network(self, network: Network) -> None:
        if not self.is_admin and network.tenant_id != self.requesting_tenant().pk:
            raise PermissionDenied("shared networks are managed by cluster administrators")

    def create(self, request, *args, **kwargs):
        self.deny_admin_only_fields("tenant", "shared")
        return super().create(request, *args, **kwargs)

    def update(self, request, *args, **kwargs):
        self.deny_admin_only_fields("tenant", "shared")
        self._deny_foreign_network(self.get_object())
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        self._deny_foreign_network(instance)
        delete_network(instance)


class LeaseViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Leases of the tenant's networks, and of its own attachments on shared networks."""

    queryset = Lease.objects.select_related("network")
    serializer_class = LeaseSerializer
    filterset_class = LeaseFilterSet
    tenant_lookup = "network__tenant"

    def shared_q(self, tenant):
        return Q(attachment__instance__tenant=tenant.pk) if tenant else None
