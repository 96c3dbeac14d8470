import django_filters

from ciaoweb.core.api.filtering import BaseFilterSet, IdOrNameFilter
from ciaoweb.events.models import Event
from ciaoweb.tenancy.filtersets import visible_tenants


class EventFilterSet(BaseFilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")
    # Choices scoped to the requester: another tenant's id or name is as unknown as a random one.
    tenant = IdOrNameFilter(queryset=visible_tenants)
    search_fields = ("message",)
    ordering_fields = ("created", "kind", "object_type")

    class Meta:
        model = Event
        fields = ["kind", "object_type", "object_id", "tenant", "since"]
