from django.db.models import Prefetch
from rest_framework import serializers

from ciaoweb.operations.choices import Step
from ciaoweb.operations.models import Operation


def step_field() -> serializers.ChoiceField:
    # Declared: a generated read-only field forgets that `step` may be blank, and a client
    # generated from the schema would then refuse a finished operation.
    return serializers.ChoiceField(
        choices=Step.CHOICES,
        allow_blank=True,
        read_only=True,
        help_text="what a running operation waits for; empty otherwise",
    )


class OperationSummarySerializer(serializers.ModelSerializer):
    """An instance's latest operation, nested in the instance representation."""

    step = step_field()

    class Meta:
        model = Operation
        fields = ["id", "kind", "state", "step", "error", "created", "updated"]
        read_only_fields = fields


class OperationSerializer(serializers.ModelSerializer):
    """The read representation (REST and websocket); operations are written by services."""

    step = step_field()
    host_name = serializers.CharField(source="host.name", read_only=True, allow_null=True)
    source_host_name = serializers.CharField(
        source="source_host.name", read_only=True, allow_null=True
    )
    target_host_name = serializers.CharField(
        source="target_host.name", read_only=True, allow_null=True
    )

    class Meta:
        model = Operation
        fields = [
            "id",
            "kind",
            "state",
            "step",
            "tenant",
            "instance",
            "instance_name",
            "host",
            "host_name",
            "source_host",
            "source_host_name",
            "target_host",
            "target_host_name",
            "parent",
            "attachment",
            "error",
            "attempts",
            "created",
            "updated",
            "finished",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "instance": {"help_text": "the instance; null for host-level ones and once deleted"},
            "instance_name": {"help_text": "the instance's name (kept after its deletion)"},
            "host": {"help_text": "the host it acts on (a create's, an evacuation's)"},
            "source_host": {"help_text": "where a migration comes from"},
            "target_host": {"help_text": "where a migration goes"},
            "parent": {"help_text": "the evacuation a migration is part of"},
            "attachment": {
                "help_text": "the interface an attach adds or a detach removes; null for "
                "other kinds and once the interface is gone"
            },
            "error": {"help_text": "why it failed"},
            "attempts": {"help_text": "how often the current step was sent again"},
            "finished": {"help_text": "when it succeeded or failed"},
        }


# Where `prefetch_latest_operation` puts an instance's latest operation (a list of 0 or 1).
LATEST_OPERATION_ATTR = "latest_operations"


def prefetch_latest_operation() -> Prefetch:
    """For a queryset of instances: each one's latest operation, in one query for all."""
    return Prefetch(
        "operations",
        queryset=Operation.objects.order_by("-created")[:1],
        to_attr=LATEST_OPERATION_ATTR,
    )


def latest_operation(instance) -> Operation | None:
    """The instance's latest operation: prefetched, or one query (a websocket push)."""
    prefetched = getattr(instance, LATEST_OPERATION_ATTR, None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    if instance.pk is None:
        return None
    return instance.operations.order_by("-created").first()
