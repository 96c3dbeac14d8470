"""Desired-state changes → node tasks. Called after commit (core.hooks.dispatch_on_commit).

Each function re-reads the rows it needs, so a late or repeated call is harmless, and
sends specs to the right node queue (the router picks `node.<host>` from `node=`).
"""

from __future__ import annotations

import logging

from celery import chain
from django.db import transaction

from ciaoweb import taskrouting as names
from ciaoweb.instances.choices import InstanceKind, InstanceState
from ciaoweb.instances.models import Instance
from ciaoweb.inventory.models import Host
from ciaoweb.networks.choices import Ipam, NetworkKind

from . import sender
from .choices import DhcpServerState, Purpose
from .dhcp import server_signature
from .models import DhcpServer
from .specs import instance_spec, removal_spec

log = logging.getLogger(__name__)


def _dhcp_signatures(instance: Instance) -> list:
    """Reservations the instance's DHCP clients depend on, refreshed before it boots: its
    `controller`-IPAM SR-IOV networks, and its overlay when a VM guest will ask there (a
    container's eth0 is configured by us). Dynamic networks have no reservations."""
    signatures = []
    for attachment in instance.attachments.select_related("network"):
        network = attachment.network
        if network.ipam != Ipam.CONTROLLER:
            continue
        if network.kind == NetworkKind.OVERLAY and instance.kind != InstanceKind.VM:
            continue
        if (signature := server_signature(network)) is not None:
            signatures.append(signature)
    return signatures


def send_instance(instance: Instance, purpose: str, host: Host, **spec_options) -> None:
    """Reservations first, then the instance: a chain, so DHCP never races the boot."""
    spec = instance_spec(instance, purpose, **spec_options)
    steps = _dhcp_signatures(instance) + [
        sender.signature(names.ENSURE_INSTANCE, host.name, spec=spec)
    ]
    sender.send(chain(*steps) if len(steps) > 1 else steps[0])


def instance_changed(instance_id) -> None:
    instance = Instance.objects.select_related("host").filter(pk=instance_id).first()
    if instance is None or instance.host is None:
        return
    if instance.state not in (InstanceState.PENDING, InstanceState.PROVISIONING):
        return
    with transaction.atomic():
        moved = Instance.objects.filter(pk=instance.pk, state=InstanceState.PENDING).update(
            state=InstanceState.PROVISIONING
        )
    if moved:
        from .results import instance_event

        instance.refresh_from_db()
        instance_event(instance, f"instance {instance} provisioning on {instance.host.name}")
    send_instance(instance, Purpose.PROVISION, instance.host)


def instance_deleted(instance_id) -> None:
    instance = Instance.objects.select_related("host").filter(pk=instance_id).first()
    if instance is None:
        return
    if instance.host is None:
        from ciaoweb.instances.services import finalize_instance_deletion

        finalize_instance_deletion(instance.pk)
        return
    spec = instance_spec(instance, Purpose.DELETE)
    sender.send(sender.signature(names.RELEASE_INSTANCE, instance.host.name, spec=spec))
    _refresh_reservations(instance)


def _refresh_reservations(instance: Instance) -> None:
    for signature in _dhcp_signatures(instance):
        sender.send(signature)


def instance_migrate(instance_id, target_host_id) -> None:
    from .migration import start_migration

    start_migration(instance_id, target_host_id)


def host_evacuate(host_id) -> None:
    from .migration import evacuate

    evacuate(host_id)


def network_changed(network_id) -> None:
    from .dhcp import ensure_server

    ensure_server(network_id)


def network_deleted(network_id) -> None:
    server = (
        DhcpServer.objects.select_related("host", "vf__pf").filter(network_key=network_id).first()
    )
    if server is None:
        return
    DhcpServer.objects.filter(pk=server.pk).update(state=DhcpServerState.REMOVING)
    sender.send(
        sender.signature(names.REMOVE_DHCP_SERVER, server.host.name, spec=removal_spec(server))
    )
