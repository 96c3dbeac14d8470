import uuid

from django.db.models import Q, QuerySet

from ciaoweb.core.api.filtering import BaseFilterSet, IdOrNameFilter, MultiValueCharFilter
from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.instances.models import Instance
from ciaoweb.operations.models import Operation
from ciaoweb.tenancy.filtersets import visible_tenants

HOST_FIELDS = ("host", "source_host", "target_host")


class OperationFilterSet(BaseFilterSet):
    # Free-form, unlike other foreign keys: an unknown host matches nothing (a 200), as
    # the operations of a member's instance may name hosts it has no instance on any more.
    host = MultiValueCharFilter(
        method="filter_host",
        label="A host's id or name: operations on it, from it or to it.",
    )
    # Choices scoped to the requester: another tenant's id is as unknown as a random one.
    instance = IdOrNameFilter(queryset=filter_choices(Instance, "tenant"))
    parent = IdOrNameFilter(queryset=filter_choices(Operation, "tenant"), name_field=None)
    tenant = IdOrNameFilter(queryset=visible_tenants)
    search_fields = ("instance_name", "error")
    ordering_fields = ("created", "updated", "finished", "kind", "state", "instance_name")

    class Meta:
        model = Operation
        fields = ["instance", "host", "kind", "state", "parent", "tenant"]

    def filter_host(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        wanted = Q()
        for text in value:
            try:
                match = {f"{field}_id": uuid.UUID(text) for field in HOST_FIELDS}
            except ValueError:  # not an id: a host's name
                match = {f"{field}__name": text for field in HOST_FIELDS}
            for lookup, target in match.items():
                wanted |= Q(**{lookup: target})
        return queryset.filter(wanted)
