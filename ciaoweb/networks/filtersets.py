import django_filters
from django.db.models import Q

from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.instances.models import Attachment
from ciaoweb.networks.choices import Ipam, LeaseState, NetworkKind
from ciaoweb.networks.models import Lease, Network
from ciaoweb.tenancy.models import Tenant

# Every choice scoped to the requester, as the collections are: another tenant's id is as
# unknown as a random one (the same 400), never a 200 with an empty list.
visible_networks = filter_choices(Network, "tenant", lambda tenant: Q(shared=True))


class NetworkFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=NetworkKind.CHOICES)
    ipam = django_filters.ChoiceFilter(choices=Ipam.CHOICES)
    tenant = django_filters.ModelChoiceFilter(queryset=filter_choices(Tenant, "pk"))

    class Meta:
        model = Network
        fields = ["kind", "ipam", "tenant", "physnet", "shared", "name"]


class LeaseFilterSet(django_filters.FilterSet):
    mac = django_filters.CharFilter(lookup_expr="iexact")
    state = django_filters.ChoiceFilter(choices=LeaseState.CHOICES)
    network = django_filters.ModelChoiceFilter(queryset=visible_networks)
    attachment = django_filters.ModelChoiceFilter(
        queryset=filter_choices(Attachment, "instance__tenant")
    )

    class Meta:
        model = Lease
        fields = ["network", "mac", "state", "attachment"]
