"""Live migration, make before break: the target plugs VFs with the same MACs, the
instance switches over when the target reports success, then the source unplugs. A
failing (or silent) target rolls back to the source, which never stopped.

    pending ──start──> plug-target ──ok──> unplug-source ──> succeeded
                           └──failed──> rollback ──> failed (still on the source)

`Operation.vfs` records the VFs it moves ({attachment: [old VF, new VF]}), so any worker
can carry on after a crash: nothing is rebuilt from events or task context.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ciaoweb import taskrouting as names
from ciaoweb.core.exceptions import DomainError
from ciaoweb.instances.choices import AttachmentState, InstanceState
from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import retarget_attachments, vf_released
from ciaoweb.inventory import load
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.operations.choices import Step
from ciaoweb.operations.models import Operation

from .. import sender
from ..choices import Purpose
from ..reports import apply_instance_result, instance_event
from ..specs import instance_spec
from . import steps


def start(operation: Operation, instance: Instance | None) -> None:
    if instance is None or instance.state != InstanceState.MIGRATING:
        steps.fail(operation, "the instance is no longer migrating")
        return
    if operation.target_host is None:
        _abort(operation, instance, "migration failed before it started: the target is gone")
        return
    try:
        moved = retarget_attachments(instance.pk, operation.target_host_id)
    except DomainError as exc:
        _abort(operation, instance, f"migration failed before it started: {exc}")
        return
    instance.refresh_from_db()
    operation.vfs = {
        str(a): [str(old) if old else None, str(new)] for a, (old, new) in moved.items()
    }
    operation.host = instance.host
    operation.save(update_fields=["vfs", "host", "updated"])
    _plug_target(operation, instance)


def _abort(operation: Operation, instance: Instance, reason: str) -> None:
    instance.state = InstanceState.RUNNING
    instance.save(update_fields=["state", "updated"])
    instance_event(instance, f"instance {instance}: {reason}")
    steps.fail(operation, reason)


def _plug_target(operation: Operation, instance: Instance) -> None:
    steps.enter(operation, Step.PLUG_TARGET, [operation.target_host.name])
    steps.send_on_commit([_plug_signature(operation, instance)])


def _plug_signature(operation: Operation, instance: Instance):
    spec = instance_spec(instance, Purpose.MIGRATE, context=steps.context(operation), announce=True)
    return sender.signature(names.ENSURE_INSTANCE, operation.target_host.name, spec=spec)


def release_signature(
    operation: Operation, instance: Instance, host_name: str, vf_ids: dict[str, str], purpose: str
):
    """Release these VFs ({attachment: VF id}) of the instance on `host_name`."""
    in_bulk = VirtualFunction.objects.select_related("pf").in_bulk(list(vf_ids.values()))
    vfs = {str(pk): vf for pk, vf in in_bulk.items()}  # ids travel as strings
    overrides = {
        attachment.pk: vfs.get(vf_ids[str(attachment.pk)])
        for attachment in instance.attachments.all()
        if str(attachment.pk) in vf_ids
    }
    spec = instance_spec(
        instance,
        purpose,
        vfs=overrides,
        context=steps.context(operation, vf_ids=list(vf_ids.values())),
    )
    spec["attachments"] = [a for a in spec["attachments"] if a["attachment_id"] in vf_ids]
    return sender.signature(names.RELEASE_INSTANCE, host_name, spec=spec)


def _old_vfs(operation: Operation) -> dict[str, str]:
    return {a: ids[0] for a, ids in operation.vfs.items() if ids[0]}


def _new_vfs(operation: Operation) -> dict[str, str]:
    return {a: ids[1] for a, ids in operation.vfs.items() if ids[1]}


def _unplug_source(operation: Operation, instance: Instance) -> None:
    old = _old_vfs(operation)
    if not old or operation.source_host is None:
        steps.succeed(operation)
        return
    steps.enter(operation, Step.UNPLUG_SOURCE, [operation.source_host.name])
    steps.send_on_commit(
        [
            release_signature(
                operation, instance, operation.source_host.name, old, Purpose.MIGRATE_SOURCE
            )
        ]
    )


def _rollback_signature(operation: Operation, instance: Instance):
    return release_signature(
        operation,
        instance,
        operation.target_host.name,
        _new_vfs(operation),
        Purpose.MIGRATE_ROLLBACK,
    )


def on_report(
    operation: Operation, instance: Instance | None, node: str, result: dict[str, Any], released
) -> None:
    if operation.step == Step.PLUG_TARGET and not released:
        if result["ok"]:
            applied = apply_instance_result(result)
            if applied is not None:
                _unplug_source(operation, applied)
            return
        rolled_back = roll_back(operation, instance, result["error"])
        if rolled_back is not None:
            steps.enter(operation, Step.ROLLBACK, [operation.target_host.name])
            steps.send_on_commit([_rollback_signature(operation, rolled_back)])
    elif operation.step in (Step.UNPLUG_SOURCE, Step.ROLLBACK) and released:
        for vf_id in _released_ids(operation):
            vf_released(vf_id)
        if operation.step == Step.UNPLUG_SOURCE:
            steps.succeed(operation)
        else:
            steps.fail(operation, operation.error or "the target failed")


def _released_ids(operation: Operation) -> list[str]:
    if operation.step == Step.UNPLUG_SOURCE:
        return list(_old_vfs(operation).values())
    return list(_new_vfs(operation).values())


@transaction.atomic
def roll_back(operation: Operation, instance: Instance | None, reason: str) -> Instance | None:
    """The target failed: attachments take their source VFs back, the instance stays on
    the source. The target's VFs go to `releasing` until the target has reset them."""
    if instance is None:
        return None
    source = operation.source_host
    if source is not None:
        load.move(instance.host, source)  # the host rows before the VF rows
    for attachment in instance.attachments.select_related("vf"):
        ids = operation.vfs.get(str(attachment.pk))
        if not ids or not ids[0]:
            continue
        new_vf = attachment.vf
        attachment.vf = None
        attachment.save(update_fields=["vf", "updated"])
        if new_vf is not None:
            new_vf.state = VfState.RELEASING
            new_vf.save(update_fields=["state", "updated"])
        old_vf = VirtualFunction.objects.get(pk=ids[0])
        old_vf.state = VfState.IN_USE
        old_vf.save(update_fields=["state", "updated"])
        attachment.vf, attachment.state = old_vf, AttachmentState.ACTIVE
        attachment.save(update_fields=["vf", "state", "updated"])
    if source is not None:
        instance.host = source
    instance.state = InstanceState.RUNNING
    instance.error = f"migration failed, still on {source.name if source else '?'}: {reason}"
    instance.generation += 1
    instance.save(update_fields=["host", "state", "error", "generation", "updated"])
    instance_event(instance, instance.error)
    operation.host = source
    operation.generation = instance.generation
    operation.error = instance.error
    operation.save(update_fields=["host", "generation", "error", "updated"])
    return instance


def resend(operation: Operation, instance: Instance | None) -> None:
    if instance is None:
        steps.fail(operation, "the instance is gone")
    elif operation.step == Step.PLUG_TARGET:
        steps.send_on_commit([_plug_signature(operation, instance)])
    elif operation.step == Step.UNPLUG_SOURCE:
        steps.send_on_commit(
            [
                release_signature(
                    operation,
                    instance,
                    operation.source_host.name,
                    _old_vfs(operation),
                    Purpose.MIGRATE_SOURCE,
                )
            ]
        )
    elif operation.step == Step.ROLLBACK:
        steps.send_on_commit([_rollback_signature(operation, instance)])


def expire(operation: Operation, instance: Instance | None) -> None:
    """A silent target: roll back (its VFs are freed when it re-registers without them).
    A silent source after the switch: the migration is done; its old VFs stay reserved
    (`releasing`) until the source re-registers and no longer holds them."""
    reason = steps.timeout_reason(operation)
    if operation.step == Step.PLUG_TARGET:
        rolled_back = roll_back(operation, instance, f"target did not answer: {reason}")
        if rolled_back is not None:
            steps.send_on_commit([_rollback_signature(operation, rolled_back)])
        steps.fail(operation, f"target {operation.target_host.name} did not answer: {reason}")
    elif operation.step == Step.UNPLUG_SOURCE:
        steps.succeed(
            operation,
            f"source {operation.source_host.name} did not confirm the release of its old VFs; "
            "they are freed when it re-registers",
        )
    else:
        steps.fail(operation, operation.error or reason)
