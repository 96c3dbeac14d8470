from rest_framework import serializers

from ciaoweb.events.models import Event


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "created", "tenant", "kind", "object_type", "object_id", "message", "data"]
        extra_kwargs = {
            "tenant": {"help_text": "the tenant concerned; null for cluster-wide events"},
            "kind": {"help_text": "what happened, e.g. `instance.created`, `host.updated`"},
            "object_type": {"help_text": "the kind of object, e.g. `instance`"},
            "object_id": {"help_text": "its id"},
            "data": {"help_text": "details, depending on the kind"},
        }
