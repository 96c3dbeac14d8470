from django.db import models

from ciaoweb.core.models import BaseModel


class Event(BaseModel):
    """Audit log: one row per change to a network, instance, attachment, lease or host."""

    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    kind = models.CharField(max_length=64)  # see choices.EventKind
    object_type = models.CharField(max_length=32)  # model name, e.g. "instance"
    object_id = models.UUIDField(null=True, blank=True)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta(BaseModel.Meta):
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["tenant", "-created"], name="events_event_tenant_created"),
            models.Index(fields=["object_type", "object_id"], name="events_event_object"),
        ]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.kind} {self.message}"
