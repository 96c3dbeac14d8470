from django.db.models import Exists, OuterRef, Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import PermissionDenied

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.instances.models import Attachment
from ciaoweb.networks.api.serializers import LeaseSerializer, NetworkSerializer
from ciaoweb.networks.choices import Ipam
from ciaoweb.networks.filtersets import LeaseFilterSet, NetworkFilterSet
from ciaoweb.networks.models import Lease, Network
from ciaoweb.networks.services import delete_network
from ciaoweb.tenancy.access import tenant_of


@extend_schema_view(
    list=extend_schema(description="A member sees its tenant's networks and the shared ones."),
    create=extend_schema(
        description=(
            "An SR-IOV network of the member's tenant (`kind: sriov`; the overlay `default` "
            "comes with the tenant). Without `vlan`, the lowest free VLAN of the physnet's "
            "tenant range is taken (409 when none is left). `vlan`, `tenant`, `shared` and "
            "`ipam: underlay` are for cluster admins (403 for members); an admin's network "
            "without `tenant` is shared."
        )
    ),
    update=extend_schema(
        description=(
            "Every field. A network in use keeps its cidr, vlan, physnet, ipam and gateway "
            "(400 per field). A member changes its own tenant's networks only (403)."
        )
    ),
    partial_update=extend_schema(description="Some fields; the same rules as the full update."),
    destroy=extend_schema(
        description="409 while instances are attached, and for the tenant's `default`."
    ),
)
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
        if not self.is_admin:
            # A member moving its network to another physnet gets a VLAN of that one's
            # tenant range (it never keeps one it did not get from the range).
            context["allocate_vlan"] = True
        return context

    def _deny_foreign_network(self, network: Network) -> None:
        if not self.is_admin and network.tenant_id != self.requesting_tenant().pk:
            raise PermissionDenied("shared networks are managed by cluster administrators")

    def _deny_provider_attributes(self, network: Network | None = None) -> None:
        """Members may not choose a VLAN (403, like Neutron's provider attributes): their
        networks get one from the physnet's tenant range. `ipam=underlay` networks need
        the physical network's own VLAN, so only cluster admins make them. Sending a
        network's current value back (a PUT of what GET returned) is not choosing."""
        if self.is_admin:
            return
        data = self.request.data
        if not isinstance(data, dict):
            return  # the serializer answers 400 for a body that is not an object
        vlan = data.get("vlan")
        if vlan not in (None, "") and not (
            network is not None and str(vlan).strip() == str(network.vlan)
        ):
            raise PermissionDenied(
                "only cluster administrators may set vlan: a member's network gets a VLAN "
                "from the physnet's tenant range (leave vlan out)"
            )
        ipam = data.get("ipam")
        if ipam == Ipam.UNDERLAY and (network is None or network.ipam != Ipam.UNDERLAY):
            raise PermissionDenied(
                "only cluster administrators may create ipam=underlay networks: they need "
                "the physical network's own VLAN, which is a provider attribute"
            )

    def create(self, request, *args, **kwargs):
        self.deny_admin_only_fields("tenant", "shared")
        self._deny_provider_attributes()
        return super().create(request, *args, **kwargs)

    def update(self, request, *args, **kwargs):
        self.deny_admin_only_fields("tenant", "shared")
        network = self.get_object()
        self._deny_foreign_network(network)
        self._deny_provider_attributes(network)
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        self._deny_foreign_network(instance)
        delete_network(instance)


@extend_schema_view(
    list=extend_schema(
        description=(
            "DHCP leases of the tenant's networks; on a shared network, only those of the "
            "tenant's own attachments."
        )
    ),
)
class LeaseViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Leases of the tenant's networks, and of its own attachments on shared networks. On
    a shared network a member sees only its own tenant's leases, even on one it owns."""

    queryset = Lease.objects.select_related("network")
    serializer_class = LeaseSerializer
    filterset_class = LeaseFilterSet
    tenant_lookup = "network__tenant"

    @staticmethod
    def _own_q(tenant) -> Q:
        """Leases whose MAC is one of the tenant's attachments on that network."""
        own_mac = Attachment.objects.filter(
            instance__tenant=tenant.pk, network=OuterRef("network"), mac=OuterRef("mac")
        )
        return Q(attachment__instance__tenant=tenant.pk) | Q(Exists(own_mac))

    def shared_q(self, tenant):
        return self._own_q(tenant) if tenant else None

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.is_admin:
            return queryset
        tenant = tenant_of(self.request.user)
        if tenant is None:
            return queryset
        return queryset.filter(Q(network__shared=False) | self._own_q(tenant))
