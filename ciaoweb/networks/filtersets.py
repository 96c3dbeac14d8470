import django_filters

from ciaoweb.networks.choices import Ipam, LeaseState, NetworkKind
from ciaoweb.networks.models import Lease, Network


class NetworkFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=NetworkKind.CHOICES)
    ipam = django_filters.ChoiceFilter(choices=Ipam.CHOICES)

    class Meta:
        model = Network
        fields = ["kind", "ipam", "tenant", "physnet", "shared", "name"]


class LeaseFilterSet(django_filters.FilterSet):
    mac = django_filters.CharFilter(lookup_expr="iexact")
    state = django_filters.ChoiceFilter(choices=LeaseState.CHOICES)

    class Meta:
        model = Lease
        fields = ["network", "mac", "state", "attachment"]
