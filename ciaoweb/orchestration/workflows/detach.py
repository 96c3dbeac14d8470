"""Detach: the instance's host unplugs the interface and resets its VF to the state it
saved; then the interface's rows go, its address and leases are released and its
network's DHCP server drops the reservation.

    pending ──start──> release (the host reports) ──> succeeded

A host that never answers does not keep the interface forever: after the watchdog's
attempts its rows go anyway and the VF stays `releasing` (never handed out) until the
host re-registers without it, as for a deleted instance.
"""

from __future__ import annotations

from typing import Any

from ciaoweb import taskrouting as names
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.operations.choices import Step
from ciaoweb.operations.models import Operation

from ..choices import Purpose
from . import steps
from .hotplug import attachment_of, interface_event, interface_signature, remove


def _signature(operation: Operation, instance: Instance, attachment: Attachment):
    return interface_signature(
        names.UNPLUG_INTERFACES, operation, instance, attachment, Purpose.DETACH
    )


def start(operation: Operation, instance: Instance | None) -> None:
    attachment = attachment_of(operation, instance)
    if attachment is None:
        steps.succeed(operation, "already gone")
        return
    if instance.host is None:
        _finish(operation, instance, attachment, released=True)
        return
    steps.enter(operation, Step.RELEASE, [instance.host.name])
    steps.send_on_commit([_signature(operation, instance, attachment)])


def _finish(
    operation: Operation, instance: Instance, attachment: Attachment, released: bool, remark=""
) -> None:
    remove(operation, attachment.pk, released=released)
    interface_event(instance, f"{attachment.ifname} on {attachment.network} unplugged")
    steps.succeed(operation, remark)


def on_report(
    operation: Operation, instance: Instance | None, node: str, result: dict[str, Any], released
) -> None:
    if not released or operation.step != Step.RELEASE:
        return
    attachment = attachment_of(operation, instance)
    if attachment is None:
        steps.succeed(operation, "already gone")
    elif not result["ok"]:
        operation.error = f"{node} could not unplug {attachment.ifname}: {result['error']}"
        steps.save_waiting(operation)  # the watchdog sends it again
    else:
        _finish(operation, instance, attachment, released=True)


def resend(operation: Operation, instance: Instance | None) -> None:
    attachment = attachment_of(operation, instance)
    if attachment is None:
        steps.succeed(operation, "already gone")
    else:
        steps.send_on_commit([_signature(operation, instance, attachment)])


def expire(operation: Operation, instance: Instance | None) -> None:
    attachment = attachment_of(operation, instance)
    if attachment is None:
        steps.succeed(operation, "already gone")
        return
    _finish(
        operation,
        instance,
        attachment,
        released=False,
        remark=f"{steps.waited_for(operation)} did not confirm the unplug "
        f"({steps.timeout_reason(operation)}); the VF stays reserved until it re-registers",
    )
