"""Attach (hot-plug): the new interface's DHCP server up with its reservation, then the
instance's host plugs the VF into the running instance, addressed as at launch (a
container's DHCP client run by the agent; a VM's guest sees the interface and asks).

    pending ──start──> dhcp (its managed server reports ok) ──> plug
    plug ──the host reports it up──> succeeded (attachment active)
    plug ──failed──> rollback (the host unplugs and resets the VF) ──> failed, nothing left

A silent host: after the watchdog's attempts the interface's rows go and its VF stays
`releasing` (never handed out) until the host re-registers without it.
"""

from __future__ import annotations

from typing import Any

from ciaoweb import taskrouting as names
from ciaoweb.instances.choices import InstanceState
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.operations.choices import Step
from ciaoweb.operations.models import Operation

from ..choices import Purpose
from ..reports import apply_attachment_result
from ..specs import managed
from . import steps
from .hotplug import attachment_of, interface_event, interface_signature, remove
from .provision import dhcp_answered, enter_dhcp, resend_dhcp


def start(operation: Operation, instance: Instance | None) -> None:
    attachment = attachment_of(operation, instance)
    if attachment is None or instance.state != InstanceState.RUNNING:
        if attachment is not None:  # nothing was sent to the host: its VF is free at once
            remove(operation, attachment.pk, released=True)
        steps.fail(operation, "the instance is no longer running: nothing was plugged")
        return
    network = attachment.network
    if not enter_dhcp(operation, [network] if managed(network) else []):
        _plug(operation, instance, attachment)


def _plug(operation: Operation, instance: Instance, attachment: Attachment) -> None:
    steps.enter(operation, Step.PLUG, [instance.host.name])
    steps.send_on_commit([_plug_signature(operation, instance, attachment)])


def _plug_signature(operation: Operation, instance: Instance, attachment: Attachment):
    return interface_signature(
        names.ENSURE_INSTANCE, operation, instance, attachment, Purpose.ATTACH
    )


def _unplug_signature(operation: Operation, instance: Instance, attachment: Attachment):
    return interface_signature(
        names.UNPLUG_INTERFACES, operation, instance, attachment, Purpose.DETACH
    )


def on_dhcp(operation: Operation, instance: Instance | None, network_id: str, outcome: dict):
    if not dhcp_answered(operation, network_id, outcome):
        return
    attachment = attachment_of(operation, instance)
    if attachment is not None:
        _plug(operation, instance, attachment)


def on_report(
    operation: Operation, instance: Instance | None, node: str, result: dict[str, Any], released
) -> None:
    attachment = attachment_of(operation, instance)
    if attachment is None:
        return
    if operation.step == Step.PLUG and not released:
        errors = apply_attachment_result(result)
        if errors is None:
            return  # stale: another generation
        if not errors:
            interface_event(instance, f"{attachment.ifname} on {attachment.network} plugged")
            steps.succeed(operation)
            return
        # The host unplugged what it could not bring up; the rollback makes sure (a DHCP
        # failure leaves the VF plugged) and resets the VF before it is handed out again.
        operation.error = f"{attachment.ifname}: " + "; ".join(errors)
        steps.enter(operation, Step.ROLLBACK, [node])
        steps.save_waiting(operation)
        steps.send_on_commit([_unplug_signature(operation, instance, attachment)])
    elif operation.step == Step.ROLLBACK and released:
        if not result.get("ok"):  # the VF may still be plugged: never freed on that word
            steps.note(operation, f"rollback: {node} could not unplug: {result.get('error')}")
            return  # the watchdog sends it again
        remove(operation, attachment.pk, released=True)
        interface_event(instance, f"{attachment.ifname} not plugged: {operation.error}")
        steps.fail(operation, operation.error or "the host could not plug the interface")


def resend(operation: Operation, instance: Instance | None) -> None:
    attachment = attachment_of(operation, instance)
    if attachment is None:
        steps.fail(operation, "the instance or its new interface is gone")
    elif operation.step == Step.DHCP:
        resend_dhcp(operation)
    elif operation.step == Step.PLUG:
        steps.send_on_commit([_plug_signature(operation, instance, attachment)])
    elif operation.step == Step.ROLLBACK:
        steps.send_on_commit([_unplug_signature(operation, instance, attachment)])


def expire(operation: Operation, instance: Instance | None) -> None:
    reason = operation.error or steps.timeout_reason(operation)
    attachment = attachment_of(operation, instance)
    if attachment is not None:
        # Still in `dhcp`, the host was never asked: the VF is free. Later it may hold it.
        remove(operation, attachment.pk, released=operation.step == Step.DHCP)
        interface_event(instance, f"{attachment.ifname} not plugged: {reason}")
    steps.fail(operation, reason)
