"""What an agent reports about an instance it plugged, applied to the database: the
attachments' state and addresses, the instance's state and reason. Workflows call it."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.instances.choices import AttachmentState, InstanceKind, InstanceState, IpSource
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.networks.choices import Ipam


def instance_event(instance: Instance, message: str, **data: Any) -> None:
    record(EventKind.INSTANCE_UPDATED, instance, message, data=data or None)


def _locked_instance(instance_id) -> Instance | None:
    return Instance.objects.select_for_update().filter(pk=instance_id).first()


# --- provisioning --------------------------------------------------------------------


def _apply_attachment(attachment: Attachment, reported: dict[str, Any], kind: str) -> None:
    """Record the agent's view of one attachment: plugged, and the IP it learned."""
    network = attachment.network
    attachment.state = AttachmentState.ERROR if reported.get("error") else AttachmentState.ACTIVE
    ip = reported.get("ip")
    if ip and network.ipam == Ipam.UNDERLAY:
        attachment.ip, attachment.ip_source = ip, IpSource.UNDERLAY
    elif ip and network.ipam == Ipam.DYNAMIC:
        attachment.ip, attachment.ip_source = ip, IpSource.DHCP
    elif ip and ip != attachment.ip and network.ipam == Ipam.CONTROLLER:
        attachment.state = AttachmentState.ERROR
        reported["error"] = f"DHCP gave {ip}, the reservation is {attachment.ip}"
    elif network.ipam == Ipam.UNDERLAY and kind == InstanceKind.VM and not attachment.ip:
        attachment.ip_source = IpSource.UNKNOWN  # the guest's own DHCP: nobody tells us
    attachment.save(update_fields=["state", "ip", "ip_source", "updated"])
    if attachment.vf_id:
        VirtualFunction.objects.filter(pk=attachment.vf_id).update(state=VfState.IN_USE)
    record(
        EventKind.ATTACHMENT_UPDATED,
        attachment,
        reported.get("error") or f"{attachment} is {attachment.state}",
    )


@transaction.atomic
def apply_instance_result(result: dict[str, Any]) -> Instance | None:
    """Provisioning (or migration target) result → attachments, state, reason."""
    instance = _locked_instance(result["instance_id"])
    if instance is None or instance.generation != result["generation"]:
        return None
    if instance.state == InstanceState.DELETING:
        return None
    reported = {a["attachment_id"]: a for a in result["attachments"]}
    errors = [result["error"]] if result.get("error") else []
    if result["ok"]:
        for attachment in instance.attachments.select_related("network"):
            if str(attachment.pk) in reported:
                item = reported[str(attachment.pk)]
                _apply_attachment(attachment, item, instance.kind)
                if item.get("error"):
                    errors.append(item["error"])
    instance.netns = result.get("netns") or instance.netns
    instance.state = InstanceState.ERROR if errors else InstanceState.RUNNING
    instance.error = "; ".join(errors)
    instance.save(update_fields=["netns", "state", "error", "updated"])
    instance_event(
        instance,
        f"instance {instance} is {instance.state}"
        + (f": {instance.error}" if instance.error else ""),
    )
    return instance
