from ciaoweb.core.api.filtering import BaseFilterSet, IdOrNameFilter, MultiValueCharFilter
from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.inventory.models import Host
from ciaoweb.networks.filtersets import visible_networks
from ciaoweb.networks.models import IPv4SortKey
from ciaoweb.tenancy.filtersets import visible_tenants

# Every choice scoped to the requester: another tenant's id or name is as unknown as a
# random one (the same 400). A member knows the hosts its instances run on (their
# `host`), no other.
visible_instances = filter_choices(Instance, "tenant")
visible_hosts = filter_choices(Host, "instances__tenant")


class InstanceFilterSet(BaseFilterSet):
    host = IdOrNameFilter(queryset=visible_hosts)
    tenant = IdOrNameFilter(queryset=visible_tenants)
    search_fields = ("name", "attachments__mac", "attachments__ip")
    ordering_fields = {
        "name": "name",
        "state": "state",
        "kind": "kind",
        "host": "host__name",
        "tenant": "tenant__name",
        "created": "created",
        "updated": "updated",
    }

    class Meta:
        model = Instance
        fields = ["name", "state", "kind", "host", "tenant"]


class AttachmentFilterSet(BaseFilterSet):
    mac = MultiValueCharFilter(lookup_expr="iexact")  # MACs are stored lowercase
    instance = IdOrNameFilter(queryset=visible_instances)
    network = IdOrNameFilter(queryset=visible_networks)
    search_fields = ("mac", "ip", "ifname", "instance__name")
    ordering_fields = {
        "instance": "instance__name",
        "network": "network__name",
        "ifname": "ifname",
        "mac": "mac",
        "ip": IPv4SortKey("ip"),
        "state": "state",
        "created": "created",
    }

    class Meta:
        model = Attachment
        fields = ["instance", "network", "ifname", "mac", "ip", "state", "ip_source"]
