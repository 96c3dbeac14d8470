from rest_framework import serializers

from ciaoweb.events.models import Event


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "created", "tenant", "kind", "object_type", "object_id", "message", "data"]
