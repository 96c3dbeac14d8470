"""Live migration, make before break: plug VFs with the same MACs on the target, switch
over when the target reports success, then unplug the source. A failing target rolls
back to the source, which never stopped."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from rest_framework.exceptions import APIException, ValidationError

from ciaoweb import taskrouting as names
from ciaoweb.core.exceptions import NoCapacity
from ciaoweb.events.choices import EventKind
from ciaoweb.events.models import Event
from ciaoweb.events.services import record
from ciaoweb.instances.choices import AttachmentState, InstanceState
from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import migrate_instance, retarget_attachments
from ciaoweb.inventory import load
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction

from . import sender
from .choices import Purpose
from .dispatch import send_instance
from .results import apply_instance_result, instance_event
from .specs import instance_spec

log = logging.getLogger(__name__)


def start_migration(instance_id, target_host_id) -> None:
    instance = Instance.objects.select_related("host").filter(pk=instance_id).first()
    if instance is None or instance.state != InstanceState.MIGRATING:
        return
    source = instance.host
    try:
        moved = retarget_attachments(instance_id, target_host_id)
    except (NoCapacity, ValidationError) as exc:
        _abort(instance_id, f"migration failed before it started: {exc.detail}")
        return
    instance.refresh_from_db()
    context = {
        "source_host": source.name if source else None,
        "moved": {str(a): [str(old) if old else None, str(new)] for a, (old, new) in moved.items()},
    }
    send_instance(instance, Purpose.MIGRATE, instance.host, context=context, announce=True)


def resume_migration(instance: Instance) -> None:
    """Send a `migrating` instance's target plug again (its target agent restarted, or
    the broker lost the task or its result). The context is rebuilt from the database:
    the latest `instance.migrating` event names source and target, and each moved
    attachment's old VF is the `releasing` VF on the source that still carries the
    attachment's MAC (retarget_attachments leaves it there until `vf_released`). Same
    generation as the first send, so a late first result and this one agree.

    Only once retarget_attachments has run (the instance's host is the target): before
    that, start_migration may still be running and must not race a second one."""
    started = (
        Event.objects.filter(object_id=instance.pk, kind=EventKind.INSTANCE_MIGRATING)
        .order_by("-created")
        .first()
    )
    data = (started.data or {}) if started else {}
    source, target = data.get("from"), data.get("to")
    if instance.host is None or target != instance.host.name or source == target:
        log.warning("migration of %s not resumed: not retargeted yet (%s)", instance, data)
        return
    moved: dict[str, list] = {}
    for attachment in instance.attachments.all():
        if attachment.vf_id is None:
            continue
        old = (
            VirtualFunction.objects.filter(
                state=VfState.RELEASING, mac=attachment.mac, pf__host__name=source
            )
            .order_by("-updated")
            .first()
        )
        moved[str(attachment.pk)] = [str(old.pk) if old else None, str(attachment.vf_id)]
    context = {"source_host": source, "moved": moved}
    send_instance(instance, Purpose.MIGRATE, instance.host, context=context, announce=True)


@transaction.atomic
def _abort(instance_id, reason: str) -> None:
    instance = Instance.objects.select_for_update().filter(pk=instance_id).first()
    if instance is None or instance.state != InstanceState.MIGRATING:
        return
    instance.state = InstanceState.RUNNING
    instance.save(update_fields=["state", "updated"])
    instance_event(instance, f"instance {instance}: {reason}")


def target_applied(node: str, result: dict[str, Any], context: dict[str, Any]) -> None:
    moved = context.get("moved", {})
    source = context.get("source_host")
    if result["ok"]:
        instance = apply_instance_result(result)
        if instance is None or not source:
            return
        old = {a: ids[0] for a, ids in moved.items() if ids[0]}
        _unplug(instance, source, old, Purpose.MIGRATE_SOURCE)
        return
    instance = _roll_back(result, moved, source)
    if instance is not None:
        new = {a: ids[1] for a, ids in moved.items()}
        _unplug(instance, node, new, Purpose.MIGRATE_ROLLBACK)


def _unplug(
    instance: Instance, host_name: str, vf_by_attachment: dict[str, str], purpose: str
) -> None:
    """Release these VFs (old source ones, or a failed target's) on `host_name`."""
    in_bulk = VirtualFunction.objects.select_related("pf").in_bulk(list(vf_by_attachment.values()))
    vfs = {str(pk): vf for pk, vf in in_bulk.items()}  # ids travel as strings
    overrides = {
        attachment.pk: vfs.get(vf_by_attachment.get(str(attachment.pk)))
        for attachment in instance.attachments.all()
        if str(attachment.pk) in vf_by_attachment
    }
    spec = instance_spec(
        instance, purpose, vfs=overrides, context={"vf_ids": list(vf_by_attachment.values())}
    )
    spec["attachments"] = [a for a in spec["attachments"] if a["attachment_id"] in vf_by_attachment]
    sender.send(sender.signature(names.RELEASE_INSTANCE, host_name, spec=spec))


@transaction.atomic
def _roll_back(
    result: dict[str, Any], moved: dict[str, list], source: str | None
) -> Instance | None:
    """The target failed: attachments take their source VFs back, the instance stays."""
    instance = Instance.objects.select_for_update().filter(pk=result["instance_id"]).first()
    if instance is None or instance.generation != result["generation"]:
        return None
    source_host = Host.objects.get(name=source) if source else None
    if source_host is not None:
        load.move(instance.host, source_host)  # the host rows before the VF rows
    for attachment in instance.attachments.select_related("vf"):
        ids = moved.get(str(attachment.pk))
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
    if source_host is not None:
        instance.host = source_host
    instance.state = InstanceState.RUNNING
    instance.error = f"migration failed, still on {source}: {result['error']}"
    instance.generation += 1
    instance.save(update_fields=["host", "state", "error", "generation", "updated"])
    instance_event(instance, instance.error)
    return instance


def evacuate(host_id) -> None:
    """Migrate every instance off the host (each to the best other host)."""
    host = Host.objects.filter(pk=host_id).first()
    if host is None:
        return
    for instance in Instance.objects.filter(host=host, state__in=InstanceState.MIGRATABLE):
        try:
            migrate_instance(instance)
        except APIException as exc:
            record(
                EventKind.HOST_UPDATED,
                host,
                f"evacuation of {host}: {instance} cannot move: {exc.detail}",
            )
