"""Opening operations: called by the services that make a change, in their transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record

from .choices import OperationKind, OperationState
from .models import Operation
from .queue import advance_on_commit


def step_deadline(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(seconds=settings.CIAO_OPERATION_STEP_TIMEOUT)


def open_operation(kind: str, *, instance=None, advance: bool = True, **fields: Any) -> Operation:
    """Write a pending operation and, after commit, queue "advance it". The watchdog
    advances it anyway if that message is lost (its deadline is set now)."""
    if instance is not None:
        fields.setdefault("tenant_id", instance.tenant_id)
        fields.setdefault("host_id", instance.host_id)
        fields.setdefault("generation", instance.generation)
        fields["instance_name"] = instance.name
    operation = Operation.objects.create(
        kind=kind, instance=instance, deadline=step_deadline(), **fields
    )
    record(EventKind.OPERATION_UPDATED, operation, f"{operation.kind} {_subject(operation)} queued")
    if advance:
        advance_on_commit(operation.pk)
    return operation


def record_finished(kind: str, **fields: Any) -> Operation:
    """An operation that is done as soon as it is written (e.g. restoring a host)."""
    now = timezone.now()
    operation = Operation.objects.create(
        kind=kind, state=OperationState.SUCCEEDED, finished=now, **fields
    )
    record(EventKind.OPERATION_UPDATED, operation, f"{kind} {_subject(operation)} succeeded")
    return operation


def active_instance_operation(instance) -> Operation | None:
    """The create, migrate or delete that owns the instance now, locked."""
    return (
        Operation.objects.select_for_update()
        .filter(
            instance=instance,
            state__in=OperationState.ACTIVE,
            kind__in=OperationKind.INSTANCE_KINDS,
        )
        .first()
    )


def finish(operation: Operation, state: str, error: str = "") -> None:
    """End the operation (succeeded or failed) and let its parent evacuation count it.
    Saves only what finishing changes: its instance may be gone (the FK set null)."""
    operation.state, operation.error, operation.finished = state, error, timezone.now()
    operation.step, operation.waiting, operation.deadline = "", [], None
    operation.save(
        update_fields=["state", "error", "step", "waiting", "deadline", "finished", "updated"]
    )
    if operation.parent_id:
        advance_on_commit(operation.parent_id)  # an evacuation counts its children


def end_superseded(operation: Operation, reason: str) -> None:
    """Another operation takes the instance over (a delete): this one ends, failed."""
    finish(operation, OperationState.FAILED, reason)
    record(EventKind.OPERATION_UPDATED, operation, f"{operation.kind} failed: {reason}")


def _subject(operation: Operation) -> str:
    if operation.instance_name:
        return f"of {operation.instance_name}"
    return f"of host {operation.host.name}" if operation.host_id else ""
