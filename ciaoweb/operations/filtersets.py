import uuid

import django_filters
from django.db.models import Q, QuerySet

from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.instances.models import Instance
from ciaoweb.operations.choices import OperationKind, OperationState
from ciaoweb.operations.models import Operation
from ciaoweb.tenancy.models import Tenant

HOST_FIELDS = ("host", "source_host", "target_host")


class OperationFilterSet(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=OperationKind.CHOICES)
    state = django_filters.ChoiceFilter(choices=OperationState.CHOICES)
    host = django_filters.CharFilter(
        method="filter_host",
        label="A host's id or name: operations on it, from it or to it.",
    )
    # Choices scoped to the requester: another tenant's id is as unknown as a random one.
    instance = django_filters.ModelChoiceFilter(queryset=filter_choices(Instance, "tenant"))
    parent = django_filters.ModelChoiceFilter(queryset=filter_choices(Operation, "tenant"))
    tenant = django_filters.ModelChoiceFilter(queryset=filter_choices(Tenant, "pk"))

    class Meta:
        model = Operation
        fields = ["instance", "host", "kind", "state", "parent", "tenant"]

    def filter_host(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        try:
            match = {f"{field}_id": uuid.UUID(value) for field in HOST_FIELDS}
        except ValueError:  # not an id: a host's name
            match = {f"{field}__name": value for field in HOST_FIELDS}
        wanted = Q()
        for lookup, target in match.items():
            wanted |= Q(**{lookup: target})
        return queryset.filter(wanted)
