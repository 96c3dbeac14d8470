"""What every workflow does with its Operation row: enter a step, tell whether a report
answers it, send after commit, and finish with a reason.

Lock order everywhere: the instance row, then the operation row, then networks, hosts
and VFs (see inventory.load). The API side locks an instance and then its operation too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from celery import Signature
from django.conf import settings
from django.db import transaction

from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.instances.models import Instance
from ciaoweb.operations.choices import OperationState
from ciaoweb.operations.models import Operation
from ciaoweb.operations.services import finish, step_deadline

from .. import sender

log = logging.getLogger(__name__)


def lock(operation_id) -> tuple[Operation | None, Instance | None]:
    """The operation and its instance, locked instance first (call inside a transaction)."""
    instance = (  # found through its operation: one query, not two
        Instance.objects.select_for_update(of=("self",))
        .select_related("host")
        .filter(operations__pk=operation_id)
        .first()
    )
    operation = (
        Operation.objects.select_for_update(of=("self",))
        .select_related("host", "source_host", "target_host")
        .filter(pk=operation_id)
        .first()
    )
    return operation, instance


def context(operation: Operation, **extra: Any) -> dict[str, Any]:
    """What a node task carries and its report echoes: the operation and its step."""
    return {"operation_id": str(operation.pk), "step": operation.step, **extra}


def answers(operation: Operation | None, reported: dict[str, Any]) -> bool:
    """A report counts only for the active operation and the step it waits for."""
    return (
        operation is not None
        and operation.state == OperationState.RUNNING
        and reported.get("operation_id") == str(operation.pk)
        and reported.get("step") == operation.step
    )


def note(operation: Operation, message: str, **data: Any) -> None:
    record(EventKind.OPERATION_UPDATED, operation, message, data=data or None)


def enter(operation: Operation, step: str, waiting: Iterable[str]) -> None:
    operation.state = OperationState.RUNNING
    operation.step = step
    operation.waiting = sorted(set(waiting))
    operation.attempts = 0
    operation.deadline = step_deadline()
    operation.save(update_fields=["state", "step", "waiting", "attempts", "deadline", "updated"])
    note(operation, f"{operation.kind} {operation.instance_name or ''}: {step}".rstrip(": "))


def save_waiting(operation: Operation) -> None:
    operation.save(update_fields=["waiting", "error", "updated"])


def renew(operation: Operation, attempt: bool) -> None:
    """The current step is sent again: by the watchdog (an attempt) or because a host
    re-registered (not counted: it asked for what it missed)."""
    if attempt:
        operation.attempts += 1
    operation.deadline = step_deadline()
    operation.save(update_fields=["attempts", "deadline", "updated"])
    if attempt:
        note(operation, f"{operation.step}: no progress, sent again (attempt {operation.attempts})")


def exhausted(operation: Operation) -> bool:
    return operation.attempts + 1 >= settings.CIAO_OPERATION_ATTEMPTS


def send_on_commit(signatures: Iterable[Signature]) -> None:
    """Node tasks go out once the step they answer is committed, so no report can
    arrive before the row says what it waits for."""
    for signature in list(signatures):
        transaction.on_commit(lambda s=signature: sender.send(s))


def succeed(operation: Operation, remark: str = "") -> None:
    finish(operation, OperationState.SUCCEEDED, remark)
    note(operation, f"{operation.kind} succeeded" + (f": {remark}" if remark else ""))


def fail(operation: Operation, error: str) -> None:
    finish(operation, OperationState.FAILED, error)
    note(operation, f"{operation.kind} failed: {error}")


def waited_for(operation: Operation) -> str:
    return ", ".join(operation.waiting) or "nothing"


def timeout_reason(operation: Operation) -> str:
    seconds = settings.CIAO_OPERATION_STEP_TIMEOUT * settings.CIAO_OPERATION_ATTEMPTS
    return (
        f"{operation.step} made no progress in {seconds:.0f} s "
        f"({settings.CIAO_OPERATION_ATTEMPTS} attempts; waiting for {waited_for(operation)})"
    )
