"""Operations: every create, migrate, delete, evacuate and restore is a row that drives
its work (Nova's instance actions, a Kubernetes controller's status).

The row is written in the same transaction as the change it carries out. After commit
only "advance this operation" is queued; the controller's worker reads the row, sends
what the current `step` needs, and applies an agent report only when the report names
this operation and the step it waits for. A watchdog re-sends a step that made no
progress by `deadline`, or fails the operation with a reason.
"""

from django.db import models
from django.db.models import Q

from ciaoweb.core.models import BaseModel

from .choices import OperationKind, OperationState, Step


class Operation(BaseModel):
    kind = models.CharField(max_length=16, choices=OperationKind.CHOICES)
    state = models.CharField(
        max_length=16, choices=OperationState.CHOICES, default=OperationState.PENDING
    )
    step = models.CharField(max_length=16, choices=Step.CHOICES, blank=True)
    # Scoping: members see their tenant's operations (None: cluster-wide, e.g. evacuate).
    tenant = models.ForeignKey(
        "tenancy.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="operations",
    )
    # Kept after the instance is deleted (the delete operation outlives it).
    instance = models.ForeignKey(
        "instances.Instance",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operations",
    )
    instance_name = models.CharField(max_length=63, blank=True)
    host = models.ForeignKey(
        "inventory.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_host = models.ForeignKey(
        "inventory.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_host = models.ForeignKey(
        "inventory.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    # Hot-plug: the interface an attach adds or a detach removes (null once it is gone).
    attachment = models.ForeignKey(
        "instances.Attachment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operations",
    )
    # The instance generation this operation drives: agents echo it, stale ones are ignored.
    generation = models.PositiveIntegerField(default=0)
    # Migration: {attachment id: [old VF id or None, new VF id]}, the VFs it moves.
    vfs = models.JSONField(default=dict, blank=True)
    # What the current step still waits for (network ids of DHCP servers, host names).
    waiting = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # re-sends of the current step
    deadline = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta(BaseModel.Meta):
        ordering = ["created"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k for k, _ in OperationKind.CHOICES]),
                name="operations_operation_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s for s, _ in OperationState.CHOICES]),
                name="operations_operation_state_valid",
            ),
            # At most one active create/migrate/delete/attach/detach per instance: the
            # database's word.
            models.UniqueConstraint(
                fields=["instance"],
                condition=Q(state__in=OperationState.ACTIVE, kind__in=OperationKind.INSTANCE_KINDS),
                name="operations_operation_one_active_per_instance",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "deadline"], name="operations_operation_due"),
            models.Index(fields=["instance", "created"], name="operations_operation_instance"),
        ]

    def __str__(self) -> str:
        subject = self.instance_name or (self.host.name if self.host_id else "")
        return f"{self.kind} {subject} ({self.state})"

    @property
    def active(self) -> bool:
        return self.state in OperationState.ACTIVE
