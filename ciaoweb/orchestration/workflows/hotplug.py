"""What the attach and detach workflows share: the one interface an operation plugs or
unplugs, the node task that carries it, and its removal once the host is done."""

from __future__ import annotations

from celery import Signature

from ciaoweb.instances.hotplug import finalize_detach
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.operations.models import Operation

from .. import sender
from ..dhcp import lock_servers_of, server_signature
from ..reports import instance_event
from ..specs import ReservationScope, instance_spec
from . import steps


def attachment_of(operation: Operation, instance: Instance | None) -> Attachment | None:
    """The interface the operation adds or removes, if it and its instance still exist."""
    if instance is None or operation.attachment_id is None:
        return None
    return instance.attachments.select_related("network").filter(pk=operation.attachment_id).first()


def interface_signature(
    task: str, operation: Operation, instance: Instance, attachment: Attachment, purpose: str
) -> Signature:
    """`task` (ensure_instance to plug, unplug_interfaces to unplug) for this attachment
    alone on the instance's host: the agent leaves the others as they are."""
    spec = instance_spec(instance, purpose, context=steps.context(operation), only=[attachment.pk])
    return sender.signature(task, instance.host.name, spec=spec)


def remove(operation: Operation, attachment_id, released: bool) -> None:
    """The interface's rows go (VF free, or `releasing` when its host never confirmed),
    and its network's DHCP server drops the reservation (releasing the lease)."""
    # Servers before networks, as a deletion locks them.
    lock_servers_of(Attachment.objects.filter(pk=attachment_id).values("network_id"))
    scope = ReservationScope.of(Attachment.objects.filter(pk=attachment_id))  # before it goes
    network = finalize_detach(attachment_id, released=released)
    if network is not None and (signature := server_signature(network, scope=scope)) is not None:
        steps.send_on_commit([signature])


def interface_event(instance: Instance | None, message: str) -> None:
    if instance is not None:
        instance_event(instance, f"instance {instance}: {message}")
