"""Applying what agents report to the database (run by the controller's worker).

Every handler locks the rows it changes and ignores stale reports: a result whose
generation is not the instance's current one describes a desired state that no longer
exists.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from ciaoweb import taskrouting as names
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.instances.choices import AttachmentState, InstanceKind, InstanceState, IpSource
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import (
    finalize_instance_deletion,
    free_unheld_releasing_vfs,
    vf_released,
)
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.inventory.services import heartbeat, register_inventory
from ciaoweb.networks.choices import Ipam, LeaseState
from ciaoweb.networks.models import Lease, Network

from . import sender
from .choices import DhcpServerState, Purpose
from .dhcp import place_missing_servers, servers_for_node
from .models import DhcpServer
from .specs import reconcile_plan

log = logging.getLogger(__name__)


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


def instance_applied(node: str, result: dict[str, Any], context: dict[str, Any]) -> None:
    if context.get("purpose") == Purpose.MIGRATE:
        from .migration import target_applied

        target_applied(node, result, context)
        return
    apply_instance_result(result)


def instance_released(node: str, result: dict[str, Any], context: dict[str, Any]) -> None:
    purpose = context.get("purpose")
    if purpose == Purpose.DELETE:
        if result["ok"]:
            finalize_instance_deletion(result["instance_id"])
        else:
            _deletion_failed(result)
        return
    for vf_id in context.get("vf_ids", []):  # migration source or rolled-back target
        vf_released(vf_id)


@transaction.atomic
def _deletion_failed(result: dict[str, Any]) -> None:
    instance = _locked_instance(result["instance_id"])
    if instance is None:
        return
    instance.error = f"release failed: {result['error']}"
    instance.save(update_fields=["error", "updated"])
    instance_event(instance, f"instance {instance} could not be released: {result['error']}")


# --- DHCP servers and leases ---------------------------------------------------------------


@transaction.atomic
def dhcp_server_applied(
    network_id: str, ok: bool, error: str, netns: str, removed: bool = False, **_: Any
) -> None:
    server = DhcpServer.objects.select_for_update().filter(network_key=network_id).first()
    if server is None:
        return
    if removed:
        vf = server.vf
        server.delete()
        if vf is not None:
            vf.state, vf.mac, vf.vlan = VfState.FREE, "", None
            vf.save(update_fields=["state", "mac", "vlan", "updated"])
        return
    if server.state == DhcpServerState.REMOVING:
        return
    server.state = DhcpServerState.RUNNING if ok else DhcpServerState.ERROR
    server.error, server.netns = error, netns or server.netns
    server.save(update_fields=["state", "error", "netns", "updated"])


def _expiry(epoch: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(epoch), tz=UTC) if epoch else None
    except (TypeError, ValueError, OverflowError):
        return None


@transaction.atomic
def apply_lease_event(event: dict[str, Any]) -> Lease | None:
    """A dnsmasq add/old/del → the Lease row, and the IP of a dynamic attachment."""
    # Network row first, like `delete_network` (network, then its leases by cascade):
    # locking the lease first and the network implicitly (FK check on save) deadlocked
    # with a network deletion racing the `del` events of its last instances.
    network = Network.objects.select_for_update().filter(pk=event["network_id"]).first()
    if network is None:
        return None
    mac = str(event["mac"]).lower()
    attachment = (
        Attachment.objects.filter(network=network, mac=mac).select_related("instance").first()
    )
    lease = Lease.objects.select_for_update().filter(network=network, mac=mac).first() or Lease(
        network=network, mac=mac
    )
    lease.ip = event["ip"]
    lease.hostname = (event.get("hostname") or "")[:253]
    lease.expires_at = _expiry(event.get("expires"))
    lease.state = LeaseState.RELEASED if event["action"] == "del" else LeaseState.ACTIVE
    lease.attachment = attachment
    lease.save()
    if attachment is not None and event["action"] != "del" and network.ipam == Ipam.DYNAMIC:
        if attachment.ip != lease.ip or attachment.ip_source != IpSource.DHCP:
            attachment.ip, attachment.ip_source = lease.ip, IpSource.DHCP
            attachment.save(update_fields=["ip", "ip_source", "updated"])
            record(EventKind.ATTACHMENT_UPDATED, attachment, f"{attachment} got {lease.ip} by DHCP")
    record(
        EventKind.LEASE_UPDATED,
        lease,
        f"lease {lease} on {network}",
        data={"action": event["action"]},
    )
    return lease


# --- inventory, liveness, reconciliation ---------------------------------------------------


def inventory_registered(node: str, inventory: dict[str, Any], owners: dict[str, str]) -> None:
    """A (re)started agent: record its inventory, then tell it what to correct and
    re-send whatever its instances are still waiting for."""
    host = register_inventory(node, inventory)
    for vf in free_unheld_releasing_vfs(host, owners):
        log.warning(
            "VF %s/%s on %s freed: released, but its report was lost", vf.pf.name, vf.index, node
        )
    plan = reconcile_plan(host.pk, owners)
    plan["dhcp_servers"] = servers_for_node(host) if host.is_network_node else []
    sender.send(sender.signature(names.RECONCILE, node, desired=plan))
    if host.is_network_node:
        place_missing_servers()
    _resend_unfinished(host)


def _resend_unfinished(host: Host) -> None:
    """Whatever a crash or a lost message left half done on this host is sent again:
    every node task is idempotent, and a stale duplicate result is ignored."""
    from .dispatch import instance_deleted, send_instance
    from .migration import resume_migration

    for instance in Instance.objects.filter(host=host).select_related("host"):
        if instance.state in (InstanceState.PENDING, InstanceState.PROVISIONING):
            send_instance(instance, Purpose.PROVISION, host)
        elif instance.state == InstanceState.MIGRATING:
            resume_migration(instance)  # `host` is already the migration's target
        elif instance.state == InstanceState.DELETING:
            instance_deleted(instance.pk)


def host_heartbeat(node: str) -> None:
    heartbeat(node)


@transaction.atomic
def agent_event(node: str, event: dict[str, Any]) -> None:
    """A correction the agent made on its own (reconcile): audit it, free released VFs."""
    host = Host.objects.filter(name=node).first()
    if host is None:
        return
    record(
        str(event.get("kind", "agent.event"))[:64],
        host,
        str(event.get("message", ""))[:2000],
        data={k: v for k, v in event.items() if k not in ("kind", "message")},
    )
    if event.get("kind") == "vf.orphan_released":
        pf, index = str(event["vf"]).rsplit("/", 1)
        vf = VirtualFunction.objects.filter(pf__host=host, pf__name=pf, index=int(index)).first()
        if vf is not None and not DhcpServer.objects.filter(vf=vf).exists():
            vf_released(vf.pk)
