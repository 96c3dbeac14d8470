import django_filters

from ciaoweb.inventory.choices import HostState, VfState
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction


class HostFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=HostState.CHOICES)

    class Meta:
        model = Host
        fields = ["state", "name", "is_network_node"]


class PhysicalFunctionFilterSet(django_filters.FilterSet):
    class Meta:
        model = PhysicalFunction
        fields = ["host", "physnet", "name"]


class VirtualFunctionFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=VfState.CHOICES)
    host = django_filters.UUIDFilter(field_name="pf__host")

    class Meta:
        model = VirtualFunction
        fields = ["pf", "state", "host"]
