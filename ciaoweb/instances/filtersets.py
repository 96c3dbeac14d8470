import django_filters

from ciaoweb.instances.choices import AttachmentState, InstanceKind, InstanceState
from ciaoweb.instances.models import Attachment, Instance


class InstanceFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=InstanceState.CHOICES)
    kind = django_filters.ChoiceFilter(choices=InstanceKind.CHOICES)

    class Meta:
        model = Instance
        fields = ["state", "host", "kind", "tenant", "name"]


class AttachmentFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=AttachmentState.CHOICES)
    mac = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Attachment
        fields = ["instance", "network", "state", "mac"]
