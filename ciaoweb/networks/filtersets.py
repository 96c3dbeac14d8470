from django.db.models import Q

from ciaoweb.core.api.filtering import BaseFilterSet, IdOrNameFilter, MultiValueCharFilter
from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.instances.models import Attachment
from ciaoweb.networks.models import IPv4SortKey, Lease, Network
from ciaoweb.tenancy.filtersets import visible_tenants

# Every choice scoped to the requester, as the collections are: another tenant's id or name
# is as unknown as a random one (the same 400), never a 200 with an empty list.
visible_networks = filter_choices(Network, "tenant", lambda tenant: Q(shared=True))


class NetworkFilterSet(BaseFilterSet):
    tenant = IdOrNameFilter(queryset=visible_tenants)
    search_fields = ("name", "physnet", "cidr")
    # No `tenant`: a member must not learn where the owner of a shared network sorts.
    ordering_fields = ("name", "kind", "physnet", "vlan", "ipam", "shared", "created")

    class Meta:
        model = Network
        fields = ["name", "kind", "ipam", "tenant", "physnet", "vlan", "shared"]


class LeaseFilterSet(BaseFilterSet):
    mac = MultiValueCharFilter(lookup_expr="iexact")  # MACs are stored lowercase
    network = IdOrNameFilter(queryset=visible_networks)
    attachment = IdOrNameFilter(
        queryset=filter_choices(Attachment, "instance__tenant"), name_field=None
    )
    search_fields = ("mac", "ip", "hostname")
    ordering_fields = {
        "network": "network__name",
        "ip": IPv4SortKey("ip"),  # by number, on SQLite too
        "mac": "mac",
        "hostname": "hostname",
        "state": "state",
        "expires_at": "expires_at",
        "created": "created",
        "updated": "updated",
    }

    class Meta:
        model = Lease
        fields = ["network", "mac", "ip", "hostname", "state", "attachment"]
