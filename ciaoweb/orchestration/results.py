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
from ciaoweb.instances.choices import IpSource
from ciaoweb.instances.models import Attachment
from ciaoweb.instances.services import free_unheld_releasing_vfs, vf_released
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.inventory.services import heartbeat, register_inventory
from ciaoweb.networks.choices import Ipam, LeaseState
from ciaoweb.networks.models import Lease, Network

from . import engine, sender, trust
from .choices import DhcpServerState
from .dhcp import place_missing_servers, send_full_list, servers_for_node
from .models import DhcpServer
from .specs import reconcile_plan

log = logging.getLogger(__name__)


def instance_applied(node: str, result: dict[str, Any], context: dict[str, Any]) -> None:
    engine.on_instance_report(node, result, context, released=False)


def instance_released(node: str, result: dict[str, Any], context: dict[str, Any]) -> None:
    engine.on_instance_report(node, result, context, released=True)


# --- DHCP servers and leases ---------------------------------------------------------------


def dhcp_server_applied(
    node: str,
    network_id: str,
    ok: bool,
    error: str,
    netns: str,
    removed: bool = False,
    context: dict[str, Any] | None = None,
    needs_full: bool = False,
    **_: Any,
) -> None:
    if not _serves(node, network_id):
        trust.refuse(node, f"dhcp_server_applied for network {network_id}: no server of it there")
        return
    if needs_full:  # a partial refresh reached a node without the whole list (state lost)
        send_full_list(network_id, context)
        return
    _apply_dhcp_outcome(network_id, ok, error, netns, removed)
    if removed:  # its VF is free: a network still wanting a server (this one, moved
        place_missing_servers()  # to another physnet, or one refused a VF so far) gets it
    if context and context.get("operation_id"):
        engine.on_dhcp_report(network_id, {"ok": ok, "error": error}, context)


def _serves(node: str, network_id: str) -> bool:
    """The network's DHCP server is placed on `node`: only then is its word believed."""
    return DhcpServer.objects.filter(network_key=network_id, host__name=node).exists()


@transaction.atomic
def _apply_dhcp_outcome(network_id: str, ok: bool, error: str, netns: str, removed: bool) -> None:
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


def lease_event_from(node: str, event: dict[str, Any]) -> Lease | None:
    """A lease event is believed only from the host that runs that network's server, and
    only for a MAC of an attachment on that network. On a shared network a client may put
    any MAC in `chaddr`: one that is no attachment's there (another network's, a deleted
    instance's, made up) must not create, move or renew a lease. The exceptions are for a
    lease already recorded whose attachment is gone: its `del` ends it, and its `old` is
    ignored without a security event. dnsmasq sends that `old` on every detach and
    deletion (dropping the reservation changes the lease's hostname), before the `del`
    of the release: refusing it put a false alarm on the dashboard for each one."""
    network_id, mac = str(event.get("network_id")), str(event.get("mac", "")).lower()
    if not _serves(node, network_id):
        trust.refuse(node, f"a lease event for network {network_id}: its server is not there")
        return None
    attached = Attachment.objects.filter(network_id=network_id, mac=mac).exists()
    action = event.get("action")
    recorded = (
        not attached
        and action in ("del", "old")
        and Lease.objects.filter(network_id=network_id, mac=mac).exists()
    )
    if recorded and action == "old":
        return None
    if not (attached or recorded):
        trust.refuse(
            node,
            f"a lease event ({str(event.get('action'))[:8]}) for MAC {mac[:17]} on network "
            f"{network_id}: no attachment of that network has it",
            network_id=network_id,
            mac=mac[:17],
        )
        return None
    return apply_lease_event(event)


def inventory_registered(
    node: str,
    inventory: dict[str, Any],
    owners: dict[str, str],
    registered_at: Any = None,
    resume: bool = True,
) -> None:
    """An enrolled host's agent registered (at its start, then every reconcile interval):
    record its inventory and tell it what to correct. `registered_at` (the agent's clock)
    goes back with the plan: the agent keeps what it set up since. With `resume` (a new
    agent process, or one that lost the broker: its queue may be gone) whatever its
    operations wait for is sent again; not on the minutely registrations of an agent
    that lost nothing, whose queue still holds those steps: resending them there doubled
    a busy host's queue each minute (a burst's hosts got 411 plugs for 256 launches)."""
    enrolled = Host.objects.filter(name=node).first()
    if enrolled is None:
        trust.refuse(node, f"an inventory of host {node!r}, which is not enrolled")
        return
    if bool(inventory.get("is_network_node")) != enrolled.is_network_node:
        trust.refuse(
            node,
            f"host {node}'s claim is_network_node={bool(inventory.get('is_network_node'))}"
            f" (enrolled as {enrolled.is_network_node}); the enrolment stands",
        )
    host = register_inventory(node, inventory)
    for vf in free_unheld_releasing_vfs(host, owners):
        log.warning(
            "VF %s/%s on %s freed: released, but its report was lost", vf.pf.name, vf.index, node
        )
    plan = reconcile_plan(host.pk, owners)
    plan["dhcp_servers"] = servers_for_node(host) if host.is_network_node else []
    if isinstance(registered_at, int | float) and not isinstance(registered_at, bool):
        plan["registered_at"] = float(registered_at)
    sender.send(sender.signature(names.RECONCILE, node, desired=plan))
    if host.is_network_node:
        place_missing_servers()
    if resume:
        engine.resume_host(host)


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
        vf = _own_vf(host, event.get("vf"))
        if vf is None:
            trust.refuse(node, f"a release of VF {str(event.get('vf'))[:40]!r}: none of its VFs")
        elif not DhcpServer.objects.filter(vf=vf).exists():
            vf_released(vf.pk)


def _own_vf(host: Host, key: Any) -> VirtualFunction | None:
    """The host's VF named `"<pf>/<index>"`, or None (malformed, or another host's)."""
    pf, _, index = str(key).rpartition("/")
    if not pf or not index.isdigit():
        return None
    return VirtualFunction.objects.filter(pf__host=host, pf__name=pf, index=int(index)).first()
