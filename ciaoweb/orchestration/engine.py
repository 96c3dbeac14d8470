"""The operation engine: the controller worker's entry points for operations.

`advance` starts a pending operation (or lets an evacuation count its children); agent
reports reach the workflow only when they name the operation and the step it waits for;
`watchdog` re-sends a step that made no progress and fails an operation that ran out of
attempts; `resume_host` re-sends what a re-registered host may have missed.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from ciaoweb.instances.choices import InstanceState
from ciaoweb.inventory.choices import HostState
from ciaoweb.inventory.models import Host
from ciaoweb.operations.choices import OperationKind, OperationState, Step
from ciaoweb.operations.models import Operation

from . import trust
from .workflows import attach, delete, detach, evacuate, migrate, provision, steps

log = logging.getLogger(__name__)

WORKFLOWS = {
    OperationKind.CREATE: provision,
    OperationKind.MIGRATE: migrate,
    OperationKind.DELETE: delete,
    OperationKind.EVACUATE: evacuate,
    OperationKind.ATTACH: attach,
    OperationKind.DETACH: detach,
}


@transaction.atomic
def advance(operation_id) -> None:
    operation, instance = steps.lock(operation_id)
    if operation is None or operation.kind not in WORKFLOWS:
        return
    workflow = WORKFLOWS[operation.kind]
    if operation.state == OperationState.PENDING:
        workflow.start(operation, instance)
    elif operation.state == OperationState.RUNNING and hasattr(workflow, "poke"):
        workflow.poke(operation, instance)


@transaction.atomic
def on_instance_report(
    node: str, result: dict[str, Any], context: dict[str, Any], released: bool
) -> None:
    """`instance_applied` (released=False) or `instance_released` from `node`."""
    operation_id = context.get("operation_id")
    if not operation_id:
        log.info("report from %s names no operation: ignored", node)
        return
    operation, instance = steps.lock(operation_id)
    if not steps.answers(operation, context):
        log.info("stale report from %s for operation %s ignored", node, operation_id)
        return
    if node not in operation.waiting:
        trust.refuse(node, f"a report on operation {operation_id}, which does not wait for it")
        return
    WORKFLOWS[operation.kind].on_report(operation, instance, node, result, released)


@transaction.atomic
def on_dhcp_report(network_id: str, outcome: dict[str, Any], context: dict[str, Any]) -> None:
    operation, instance = steps.lock(context["operation_id"])
    workflow = WORKFLOWS.get(operation.kind) if operation is not None else None
    if steps.answers(operation, context) and hasattr(workflow, "on_dhcp"):  # create, attach
        workflow.on_dhcp(operation, instance, network_id, outcome)


def _due(now) -> list:
    return list(
        Operation.objects.filter(state__in=OperationState.ACTIVE, deadline__lt=now)
        .order_by("deadline")
        .values_list("pk", flat=True)
    )


def watchdog() -> int:
    """Every active operation past its deadline: started if it was never advanced (a lost
    message), its step sent again, or, out of attempts, ended with a reason."""
    handled = 0
    for operation_id in _due(timezone.now()):
        try:
            handled += _watch(operation_id)
        except DatabaseError:
            raise  # the database is away: the task is retried, every operation with it
        except Exception as exc:  # noqa: BLE001 - one broken operation must not stall the rest
            log.exception("operation %s could not be handled", operation_id)
            _fail_broken(operation_id, exc)
    return handled


@transaction.atomic
def _fail_broken(operation_id, exc: Exception) -> None:
    """An operation whose workflow raised ends failed, with its instance out of limbo."""
    operation, instance = steps.lock(operation_id)
    if operation is None or not operation.active:
        return
    reason = f"internal error at {operation.step or operation.state}: {exc}"
    if instance is not None and instance.state in InstanceState.TRANSITIONAL:
        instance.state, instance.error = InstanceState.ERROR, reason
        instance.save(update_fields=["state", "error", "updated"])
    steps.fail(operation, reason)


@transaction.atomic
def _watch(operation_id) -> int:
    operation, instance = steps.lock(operation_id)
    if operation is None or not operation.active or operation.deadline >= timezone.now():
        return 0  # finished or moved on since the query
    workflow = WORKFLOWS.get(operation.kind)
    if workflow is None:
        return 0
    if operation.state == OperationState.PENDING:
        steps.renew(operation, attempt=False)
        workflow.start(operation, instance)
    elif _queued_on_a_busy_host(operation):
        steps.renew(operation, attempt=False)  # not lost: its host has not reached it yet
    elif steps.exhausted(operation):
        log.warning("operation %s out of attempts at %s", operation, operation.step)
        workflow.expire(operation, instance)
    else:
        steps.renew(operation, attempt=True)
        workflow.resend(operation, instance)
    return 1


# A step queued behind earlier operations on a beating host has its deadline moved on
# without a resend, for at most this many step timeouts after its operation began.
QUEUE_PATIENCE_STEPS = 10


def _queued_on_a_busy_host(operation: Operation) -> bool:
    """It waits for its host, which is online and also owes operations begun before it
    their answers: its message is in that host's queue behind theirs, not lost.
    Resending it there only made the queue longer: a 256-launch burst on a slow machine
    ended with 98 launches failed as "plug made no progress in 90 s" while every host
    was busy and beating."""
    host = operation.host
    if host is None or host.state != HostState.ONLINE or host.name not in operation.waiting:
        return False
    patience = QUEUE_PATIENCE_STEPS * settings.CIAO_OPERATION_STEP_TIMEOUT
    if operation.created < timezone.now() - timedelta(seconds=patience):
        return False
    earlier = Operation.objects.filter(
        host=host, state__in=OperationState.ACTIVE, created__lt=operation.created
    )
    return any(host.name in waiting for waiting in earlier.values_list("waiting", flat=True))


def resume_host(host: Host) -> None:
    """A (re)started agent asks for what it missed: every active operation involving it
    has its current step sent again (not counted as an attempt)."""
    mine = Q(host=host) | Q(source_host=host) | Q(target_host=host)
    if host.is_network_node:
        mine |= Q(step=Step.DHCP)  # launches waiting for the servers this node runs
    involved = Operation.objects.filter(mine, state__in=OperationState.ACTIVE)
    for operation_id in involved.values_list("pk", flat=True):
        with transaction.atomic():
            operation, instance = steps.lock(operation_id)
            if operation is None or not operation.active:
                continue
            workflow = WORKFLOWS.get(operation.kind)
            if workflow is None:
                continue
            if operation.state == OperationState.PENDING:
                workflow.start(operation, instance)
            else:
                steps.renew(operation, attempt=False)
                workflow.resend(operation, instance)
