import django_filters

from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.events.models import Event
from ciaoweb.tenancy.models import Tenant


class EventFilterSet(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")
    # Choices scoped to the requester: another tenant's id is as unknown as a random one.
    tenant = django_filters.ModelChoiceFilter(queryset=filter_choices(Tenant, "pk"))

    class Meta:
        model = Event
        fields = ["kind", "object_type", "object_id", "tenant", "since"]
