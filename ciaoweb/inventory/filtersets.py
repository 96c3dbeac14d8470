"""Filters of the admin-only inventory collections (members get 403 before any filter)."""

from ciaoweb.core.api.filtering import BaseFilterSet, IdOrNameFilter, MultiValueCharFilter
from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction

# Scoped like every choice: a cluster admin's are every row (members see none).
hosts = filter_choices(Host, None)


class HostFilterSet(BaseFilterSet):
    search_fields = ("name",)
    ordering_fields = ("name", "state", "last_seen", "is_network_node", "created")

    class Meta:
        model = Host
        fields = ["name", "state", "is_network_node"]


class PhysicalFunctionFilterSet(BaseFilterSet):
    host = IdOrNameFilter(queryset=hosts)
    search_fields = ("name", "pci_address", "physnet", "host__name")
    ordering_fields = {
        "host": "host__name",
        "name": "name",
        "physnet": "physnet",
        "num_vfs": "num_vfs",
        "free_vfs": "free_vfs",  # the viewset's annotation
        "created": "created",
    }

    class Meta:
        model = PhysicalFunction
        fields = ["host", "physnet", "name", "pci_address"]


class VirtualFunctionFilterSet(BaseFilterSet):
    mac = MultiValueCharFilter(lookup_expr="iexact")  # MACs are stored lowercase
    pf = IdOrNameFilter(queryset=filter_choices(PhysicalFunction, None))
    host = IdOrNameFilter(field_name="pf__host", queryset=hosts)
    search_fields = ("netdev", "pci_address", "mac")
    ordering_fields = {
        "host": "pf__host__name",
        "pf": "pf__name",
        "index": "index",
        "state": "state",
        "mac": "mac",
        "vlan": "vlan",
        "created": "created",
    }

    class Meta:
        model = VirtualFunction
        fields = ["pf", "host", "state", "netdev", "mac", "vlan"]
