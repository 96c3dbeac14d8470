import django_filters

from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.instances.choices import AttachmentState, InstanceKind, InstanceState
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.inventory.models import Host
from ciaoweb.networks.filtersets import visible_networks
from ciaoweb.tenancy.models import Tenant

# Every choice scoped to the requester: another tenant's id is as unknown as a random one
# (the same 400). A member knows the hosts its instances run on (their `host`), no other.
visible_instances = filter_choices(Instance, "tenant")
visible_hosts = filter_choices(Host, "instances__tenant")


class InstanceFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=InstanceState.CHOICES)
    kind = django_filters.ChoiceFilter(choices=InstanceKind.CHOICES)
    host = django_filters.ModelChoiceFilter(queryset=visible_hosts)
    tenant = django_filters.ModelChoiceFilter(queryset=filter_choices(Tenant, "pk"))

    class Meta:
        model = Instance
        fields = ["state", "host", "kind", "tenant", "name"]


class AttachmentFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=AttachmentState.CHOICES)
    mac = django_filters.CharFilter(lookup_expr="iexact")
    instance = django_filters.ModelChoiceFilter(queryset=visible_instances)
    network = django_filters.ModelChoiceFilter(queryset=visible_networks)

    class Meta:
        model = Attachment
        fields = ["instance", "network", "state", "mac"]
