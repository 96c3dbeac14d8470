import django_filters

from ciaoweb.events.models import Event


class EventFilterSet(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")

    class Meta:
        model = Event
        fields = ["kind", "object_type", "object_id", "tenant", "since"]
