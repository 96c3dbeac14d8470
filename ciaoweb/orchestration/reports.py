"""What an agent reports about an instance it plugged, applied to the database: the
attachments' state and addresses, the instance's state and reason. Workflows call it."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.db import transaction

from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.instances.choices import (
    AttachmentState,
    InstanceKind,
    InstanceState,
    IpSource,
    Ipv6Source,
)
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
    """Record the agent's view of one attachment: plugged, and the IP it learned. Only
    the fields the report sets are written: a VM's guest may lease its dynamic IP before
    its host reports, and that lease's event, committed after these rows were read,
    must not be overwritten by a report that knows no IP (a lost update seen in CI)."""
    network = attachment.network
    attachment.state = AttachmentState.ERROR if reported.get("error") else AttachmentState.ACTIVE
    fields = ["state"]
    ip = reported.get("ip")
    if ip and network.ipam == Ipam.UNDERLAY:
        attachment.ip, attachment.ip_source = ip, IpSource.UNDERLAY
        fields += ["ip", "ip_source"]
    elif ip and network.ipam == Ipam.DYNAMIC:
        attachment.ip, attachment.ip_source = ip, IpSource.DHCP
        fields += ["ip", "ip_source"]
    elif ip and ip != attachment.ip and network.ipam == Ipam.CONTROLLER:
        attachment.state = AttachmentState.ERROR
        reported["error"] = f"DHCP gave {ip}, the reservation is {attachment.ip}"
    elif network.ipam == Ipam.UNDERLAY and kind == InstanceKind.VM and not attachment.ip:
        attachment.ip_source = IpSource.UNKNOWN  # the guest's own DHCP: nobody tells us
        fields.append("ip_source")
    fields += _apply_ipv6(attachment, reported)
    attachment.save(update_fields=[*fields, "updated"])
    if attachment.vf_id:
        VirtualFunction.objects.filter(pk=attachment.vf_id).update(state=VfState.IN_USE)
    record(
        EventKind.ATTACHMENT_UPDATED,
        attachment,
        reported.get("error") or f"{attachment} is {attachment.state}",
    )


def _apply_ipv6(attachment: Attachment, reported: dict[str, Any]) -> list[str]:
    """A container's IPv6 as its agent set or saw it: an underlay's is learned; on a
    managed network it must be the one the controller gave (the EUI-64 or reservation).
    Returns the fields it set."""
    ipv6 = reported.get("ipv6")
    if not ipv6 or not attachment.network.ipv6_cidr:
        return []
    if attachment.network.ipam == Ipam.UNDERLAY:
        attachment.ipv6, attachment.ipv6_source = ipv6, Ipv6Source.UNDERLAY
        return ["ipv6", "ipv6_source"]
    if ipaddress.IPv6Address(ipv6) != ipaddress.IPv6Address(attachment.ipv6 or "::"):
        attachment.state = AttachmentState.ERROR
        reported["error"] = f"the host set IPv6 {ipv6}, the controller's is {attachment.ipv6}"
    return []


def reports_on(instance: Instance | None, result: dict[str, Any]) -> bool:
    """The report is about the instance as it is: not stale (another generation), and
    the instance is not being deleted."""
    return (
        instance is not None
        and instance.generation == result["generation"]
        and instance.state != InstanceState.DELETING
    )


def _current(result: dict[str, Any]) -> Instance | None:
    """The reported instance, locked, if the report is about it as it is (`reports_on`)."""
    instance = _locked_instance(result["instance_id"])
    return instance if reports_on(instance, result) else None


def _apply_attachments(instance: Instance, result: dict[str, Any]) -> list[str]:
    """The reported attachments recorded (when the host succeeded); the errors reported."""
    reported = {a["attachment_id"]: a for a in result["attachments"]}
    errors = [result["error"]] if result.get("error") else []
    if result["ok"]:
        for attachment in instance.attachments.select_related("network"):
            if str(attachment.pk) in reported:
                item = reported[str(attachment.pk)]
                _apply_attachment(attachment, item, instance.kind)
                if item.get("error"):
                    errors.append(item["error"])
    return errors


@transaction.atomic
def apply_attachment_result(result: dict[str, Any]) -> list[str] | None:
    """Hot-plug result → the plugged attachments, leaving the running instance's own
    state alone. None when stale; else the errors reported (none: every one is up)."""
    instance = _current(result)
    if instance is None:
        return None
    errors = _apply_attachments(instance, result)
    if not result["ok"] and not errors:
        errors.append("the host reported a failure")
    return errors


@transaction.atomic
def apply_instance_result(result: dict[str, Any]) -> Instance | None:
    """Provisioning (or migration target) result → attachments, state, reason."""
    instance = _current(result)
    if instance is None:
        return None
    errors = _apply_attachments(instance, result)
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
