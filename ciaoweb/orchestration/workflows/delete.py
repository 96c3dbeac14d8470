"""Delete: the instance's host releases its VFs (and, when the delete interrupted a
migration, the source releases the old ones it still holds); then the rows go.

    pending ──start──> release (every host named in `waiting` reports) ──> succeeded

A host that never answers does not keep the instance forever: after the watchdog's
attempts the rows go anyway and the VFs stay `releasing` (never handed out) until that
host re-registers without them, like Nova's local delete on a dead compute node.
"""

from __future__ import annotations

from typing import Any

from ciaoweb import taskrouting as names
from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import finalize_instance_deletion, vf_released
from ciaoweb.networks.models import Network
from ciaoweb.operations.choices import Step
from ciaoweb.operations.models import Operation

from .. import sender
from ..choices import Purpose
from ..dhcp import lock_servers_of, server_signature
from ..reports import instance_event
from ..specs import ReservationScope, instance_spec
from . import steps
from .migrate import release_signature


def _interrupted_source(operation: Operation) -> tuple[str, dict[str, str]] | None:
    """The source host and old VFs of a migration this delete interrupted."""
    old = {a: ids[0] for a, ids in operation.vfs.items() if ids[0]}
    if not old or operation.source_host is None or operation.source_host_id == operation.host_id:
        return None
    return operation.source_host.name, old


def _signatures(operation: Operation, instance: Instance) -> list:
    signatures = []
    if instance.host is not None and instance.host.name in operation.waiting:
        spec = instance_spec(instance, Purpose.DELETE, context=steps.context(operation))
        signatures.append(sender.signature(names.RELEASE_INSTANCE, instance.host.name, spec=spec))
    source = _interrupted_source(operation)
    if source is not None and source[0] in operation.waiting:
        signatures.append(
            release_signature(operation, instance, source[0], source[1], Purpose.MIGRATE_SOURCE)
        )
    return signatures


def start(operation: Operation, instance: Instance | None) -> None:
    if instance is None:
        steps.succeed(operation, "already gone")
        return
    waiting = [instance.host.name] if instance.host is not None else []
    if (source := _interrupted_source(operation)) is not None:
        waiting.append(source[0])
    if not waiting:
        _finalize(operation, instance, released=True)
        return
    steps.enter(operation, Step.RELEASE, waiting)
    steps.send_on_commit(_signatures(operation, instance))


def _finalize(operation: Operation, instance: Instance, released: bool, remark: str = "") -> None:
    networks = [a.network_id for a in instance.attachments.all()]
    lock_servers_of(networks)  # their reservations change below: servers before networks
    scopes = {n: ReservationScope.of(instance.attachments.filter(network_id=n)) for n in networks}
    finalize_instance_deletion(instance.pk, released=released)
    # The reservations of its controller-IPAM networks go from their servers.
    steps.send_on_commit(
        s
        for n in Network.objects.filter(pk__in=networks)
        if (s := server_signature(n, scope=scopes[n.pk]))
    )
    steps.succeed(operation, remark)


def on_report(
    operation: Operation, instance: Instance | None, node: str, result: dict[str, Any], released
) -> None:
    if not released or operation.step != Step.RELEASE or node not in operation.waiting:
        return
    if instance is None:
        steps.succeed(operation, "already gone")
        return
    if not result["ok"]:
        operation.error = f"{node} could not release: {result['error']}"
        steps.save_waiting(operation)  # the watchdog sends it again
        instance.error = operation.error
        instance.save(update_fields=["error", "updated"])
        instance_event(instance, f"instance {instance}: {operation.error}")
        return
    source = _interrupted_source(operation)
    if source is not None and node == source[0]:
        for vf_id in source[1].values():
            vf_released(vf_id)
    operation.waiting = [h for h in operation.waiting if h != node]
    steps.save_waiting(operation)
    if not operation.waiting:
        _finalize(operation, instance, released=True)


def resend(operation: Operation, instance: Instance | None) -> None:
    if instance is None:
        steps.succeed(operation, "already gone")
    else:
        steps.send_on_commit(_signatures(operation, instance))


def expire(operation: Operation, instance: Instance | None) -> None:
    if instance is None:
        steps.succeed(operation, "already gone")
        return
    _finalize(
        operation,
        instance,
        released=False,
        remark=f"{steps.waited_for(operation)} did not confirm the release "
        f"({steps.timeout_reason(operation)}); the VFs stay reserved until it re-registers",
    )
