"""Evacuate: a parent operation whose children are ordinary migrations, one per
instance on the host. It lives in its row, not in an HTTP request or a task: after a
controller restart the children carry on under their own watchdog, and each child that
finishes advances the parent, which finishes once no child is left.

    pending ──start──> children (a migrate per instance) ──all finished──> succeeded | failed
"""

from __future__ import annotations

from ciaoweb.core.exceptions import DomainError
from ciaoweb.instances.choices import InstanceState
from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import migrate_instance
from ciaoweb.inventory.choices import HostState
from ciaoweb.operations.choices import OperationKind, OperationState, Step
from ciaoweb.operations.models import Operation

from . import steps


def _start_children(operation: Operation) -> None:
    """A migration for every instance on the host that has none yet (instances still
    provisioning are picked up when the parent is advanced again)."""
    refused = operation.vfs.setdefault("refused", {})
    tried = set(operation.children.values_list("instance_id", flat=True))
    candidates = Instance.objects.filter(
        host=operation.host, state__in=InstanceState.MIGRATABLE
    ).exclude(pk__in=[i for i in tried if i])
    busy = Operation.objects.filter(  # NOT IN with a NULL in it would exclude every row
        state__in=OperationState.ACTIVE, instance__isnull=False
    ).values("instance_id")
    for instance in candidates.exclude(pk__in=busy):  # busy ones: at a later poke
        if str(instance.pk) in refused:
            continue
        try:
            migrate_instance(instance, parent=operation)
        except DomainError as exc:
            refused[str(instance.pk)] = f"{instance}: {exc}"
            steps.note(
                operation, f"evacuation of {operation.host.name}: {instance} cannot move: {exc}"
            )
    operation.save(update_fields=["vfs", "updated"])


def start(operation: Operation, _instance) -> None:
    if operation.host is None or operation.host.state != HostState.MAINTENANCE:
        steps.fail(operation, "the host is no longer in maintenance")
        return
    steps.enter(operation, Step.CHILDREN, [])
    poke(operation, None)


def poke(operation: Operation, _instance) -> None:
    """Start what is left, then finish when no child is active."""
    if operation.step != Step.CHILDREN:
        return
    if operation.host is None or operation.host.state != HostState.MAINTENANCE:
        _finish(operation, cancelled="the host was restored")
        return
    _start_children(operation)
    active = operation.children.filter(state__in=OperationState.ACTIVE)
    operation.waiting = [str(pk) for pk in active.values_list("pk", flat=True)]
    steps.save_waiting(operation)
    tried = {str(i) for i in operation.children.values_list("instance_id", flat=True) if i}
    tried |= set(operation.vfs.get("refused", {}))
    # Instances still provisioning or busy are picked up later (the watchdog pokes).
    left = Instance.objects.filter(host=operation.host).exclude(state=InstanceState.DELETING)
    if not operation.waiting and not left.exclude(pk__in=tried).exists():
        _finish(operation)


def _finish(operation: Operation, cancelled: str = "") -> None:
    children = operation.children.filter(kind=OperationKind.MIGRATE)
    failed = [c for c in children if c.state == OperationState.FAILED]
    problems = [f"{c.instance_name}: {c.error}" for c in failed]
    problems += list(operation.vfs.get("refused", {}).values())
    if cancelled:
        steps.fail(operation, cancelled)
    elif problems:
        steps.fail(operation, f"{len(problems)} instance(s) did not move: " + "; ".join(problems))
    else:
        steps.succeed(operation, f"{children.count()} instance(s) moved")


def resend(operation: Operation, _instance) -> None:
    poke(operation, None)


def expire(operation: Operation, _instance) -> None:
    """Children have their own watchdogs: the parent only checks again."""
    steps.renew(operation, attempt=False)
    poke(operation, None)
