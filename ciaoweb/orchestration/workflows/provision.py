"""Create: the instance's DHCP servers up with its reservations, then its host plugs it.

    pending ──start──> dhcp (each managed server it needs reports ok) ──> plug
    pending ──start──> plug, with the refreshes (every server applies one at once)
    plug ──agent reports──> succeeded (running) | failed (error, with the reason)
    plug ──DHCP failed before its server confirmed the refresh──> dhcp

A launch on a network created the same second waits in `dhcp` until the new server
runs, so its DHCP client finds one. When every server it needs already runs on a
network node with nothing queued (`dhcp.refreshed_at_once`), the plug goes out with
the refreshes instead of a hop after their reports: the refresh lands in milliseconds,
the instance's DHCP client asks only once its host has built the namespace and moved
the VF, and a client that still asks first is ignored and asks again a second later.
The step then waits for the host and for those servers; a DHCP failure on a network
whose server has not confirmed falls back to waiting for it, then plugs again. Only
for containers: their host's DHCP client proves the lease, a VM's guest asks unseen.
"""

from __future__ import annotations

from typing import Any

from ciaoweb import taskrouting as names
from ciaoweb.instances.choices import InstanceKind, InstanceState
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.networks.choices import Ipam, NetworkKind
from ciaoweb.networks.models import Network
from ciaoweb.operations.choices import Step
from ciaoweb.operations.models import Operation

from .. import sender
from ..choices import Purpose
from ..dhcp import refreshed_at_once, server_running, server_signature
from ..reports import apply_instance_result, instance_event, reports_on
from ..specs import ReservationScope, instance_spec, managed
from . import steps


def dhcp_networks(instance: Instance) -> list[Network]:
    """Managed networks whose server must answer before the instance boots: its SR-IOV
    ones, and its overlay when a VM guest will ask there (a container's eth0 is set by us)."""
    needed = []
    for attachment in instance.attachments.select_related("network"):
        network = attachment.network
        if not managed(network):
            continue
        if network.kind == NetworkKind.OVERLAY and instance.kind != InstanceKind.VM:
            continue
        needed.append(network)
    return needed


def waits_for(network: Network) -> bool:
    """A reservation must reach the server; a dynamic network's server need only run."""
    return network.ipam == Ipam.CONTROLLER or not server_running(network)


def send_dhcp(operation: Operation, network_ids: list[str]) -> list[str]:
    """Ensure these networks' servers with the instance's reservations, tagged with the
    step. Returns the ids whose server cannot be placed yet (no network node with a free
    VF)."""
    unplaced = []
    signatures = []
    for network in Network.objects.filter(pk__in=network_ids):
        scope = ReservationScope.of(
            Attachment.objects.filter(instance_id=operation.instance_id, network=network)
        )
        signature = server_signature(network, steps.context(operation), scope)
        if signature is None:
            unplaced.append(str(network.pk))
        else:
            signatures.append(signature)
    steps.send_on_commit(signatures)
    return unplaced


def enter_dhcp(operation: Operation, networks: list[Network]) -> bool:
    """Enter step `dhcp` for those of `networks` whose server must answer first (see
    `waits_for`) and send them; False when none must (the caller plugs at once). Launch
    and hot-plug share it."""
    waiting = [str(n.pk) for n in networks if waits_for(n)]
    if waiting:
        _wait_for_servers(operation, waiting)
    return bool(waiting)


def _wait_for_servers(operation: Operation, network_ids: list[str]) -> None:
    steps.enter(operation, Step.DHCP, network_ids)
    resend_dhcp(operation)


def resend_dhcp(operation: Operation) -> None:
    _note_unplaced(operation, send_dhcp(operation, operation.waiting))


def dhcp_answered(operation: Operation, network_id: str, outcome: dict) -> bool:
    """Count a server's report in step `dhcp`: True once every server it waits for is up.
    A failure is kept as the reason (the watchdog sends the step again)."""
    if network_id not in operation.waiting:
        return False
    if not outcome.get("ok"):
        operation.error = f"DHCP server of network {network_id}: {outcome.get('error')}"
        steps.save_waiting(operation)
        return False
    operation.waiting = [n for n in operation.waiting if n != network_id]
    operation.error = ""
    steps.save_waiting(operation)
    return not operation.waiting


def start(operation: Operation, instance: Instance | None) -> None:
    if instance is None or instance.state == InstanceState.DELETING:
        steps.fail(operation, "the instance was deleted before it was provisioned")
        return
    if instance.state == InstanceState.PENDING:
        instance.state = InstanceState.PROVISIONING
        instance.save(update_fields=["state", "updated"])
        instance_event(instance, f"instance {instance} provisioning on {instance.host.name}")
    networks = [network for network in dhcp_networks(instance) if waits_for(network)]
    waiting = [str(network.pk) for network in networks]
    # A container only: its host runs the DHCP client and reports the lease, which proves
    # the reservation landed; a VM's guest asks on its own, and nobody would notice it lost.
    if networks and instance.kind == InstanceKind.CONTAINER and refreshed_at_once(networks):
        steps.enter(operation, Step.PLUG, [instance.host.name, *waiting])
        send_dhcp(operation, waiting)  # first: the plug's DHCP client asks after them
        steps.send_on_commit([plug_signature(operation, instance)])
    elif networks:
        _wait_for_servers(operation, waiting)
    else:
        _plug(operation, instance)


def _note_unplaced(operation: Operation, unplaced: list[str]) -> None:
    if unplaced:
        operation.error = (
            "no online network node with a free VF can run the DHCP server of network "
            + ", ".join(unplaced)
        )
        steps.save_waiting(operation)


def _plug(operation: Operation, instance: Instance) -> None:
    steps.enter(operation, Step.PLUG, [instance.host.name])
    steps.send_on_commit([plug_signature(operation, instance)])


def plug_signature(operation: Operation, instance: Instance):
    spec = instance_spec(instance, Purpose.PROVISION, context=steps.context(operation))
    return sender.signature(names.ENSURE_INSTANCE, instance.host.name, spec=spec)


def on_dhcp(operation: Operation, instance: Instance | None, network_id: str, outcome: dict):
    if dhcp_answered(operation, network_id, outcome) and instance is not None:
        _plug(operation, instance)


def _unconfirmed_networks(operation: Operation, instance: Instance) -> list[str]:
    """What step `plug` waits for besides the host: the networks whose refresh, sent
    beside the plug (`start`), their server has not confirmed yet."""
    return [waited for waited in operation.waiting if waited != instance.host.name]


def _unconfirmed_dhcp_failures(
    operation: Operation, instance: Instance | None, result: dict[str, Any]
) -> list[str]:
    """Networks whose DHCP the host reports failed while their server had not yet
    confirmed the refresh sent beside the plug (`start`): the client may have asked
    first, or the refresh failed."""
    if not reports_on(instance, result):
        return []  # stale, or its deletion takes over: apply_instance_result ignores it
    unconfirmed = _unconfirmed_networks(operation, instance)
    failed = {a["attachment_id"] for a in result.get("attachments", []) if a.get("error")}
    if not unconfirmed or not failed:
        return []
    networks = Attachment.objects.filter(pk__in=failed, network_id__in=unconfirmed)
    return sorted({str(n) for n in networks.values_list("network_id", flat=True)})


def on_report(
    operation: Operation, instance: Instance | None, node: str, result: dict[str, Any], _released
) -> None:
    if operation.step != Step.PLUG:
        return
    if unconfirmed := _unconfirmed_dhcp_failures(operation, instance, result):
        steps.note(operation, "DHCP failed before its server confirmed: waiting for it")
        _wait_for_servers(operation, unconfirmed)  # their reports plug again (`on_dhcp`)
        return
    applied = apply_instance_result(result)
    if applied is None:
        return  # stale: another generation
    if applied.state == InstanceState.RUNNING:
        steps.succeed(operation)
    else:
        steps.fail(operation, applied.error or "the host reported a failure")


def resend(operation: Operation, instance: Instance | None) -> None:
    if instance is None:
        steps.fail(operation, "the instance is gone")
    elif operation.step == Step.DHCP:
        resend_dhcp(operation)
    elif operation.step == Step.PLUG:
        send_dhcp(operation, _unconfirmed_networks(operation, instance))  # beside it, if any
        steps.send_on_commit([plug_signature(operation, instance)])


def expire(operation: Operation, instance: Instance | None) -> None:
    reason = operation.error or steps.timeout_reason(operation)
    if instance is not None and instance.state in (
        InstanceState.PENDING,
        InstanceState.PROVISIONING,
    ):
        instance.state = InstanceState.ERROR
        instance.error = f"provisioning failed: {reason}"
        instance.save(update_fields=["state", "error", "updated"])
        instance_event(instance, f"instance {instance}: {instance.error}")
    steps.fail(operation, reason)
