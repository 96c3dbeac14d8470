"""Creating, changing and deleting networks; every change is recorded as an event."""

import ipaddress
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from ciaoweb import taskrouting as names
from ciaoweb.core.exceptions import Conflict
from ciaoweb.core.locks import retried_on_deadlock
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.networks.choices import Ipam, NetworkKind
from ciaoweb.networks.ipam import reserve_infrastructure_ips
from ciaoweb.networks.models import PRIMARY_NETWORK_NAME, Network
from ciaoweb.networks.vlans import next_free_vlan
from ciaoweb.operations.queue import enqueue_on_commit
from ciaoweb.orchestration.dhcp import check_capacity, lock_servers_of
from ciaoweb.tenancy.quotas import check_quota

VLAN_ALLOCATION_ATTEMPTS = 5
# Every tenant's overlay is isolated, so they may all use the same range.
DEFAULT_OVERLAY_CIDR = "10.0.0.0/24"
# VXLAN adds 50 bytes to every frame of the underlay's 1500.
OVERLAY_MTU = 1450


def default_gateway(cidr: str) -> str:
    return str(ipaddress.IPv4Network(cidr).network_address + 1)


def _save_allocating_vlan(network: Network) -> None:
    """Save; a concurrent request may take the same free VLAN first, so retry a few times."""
    explicit = network.vlan is not None
    for attempt in range(VLAN_ALLOCATION_ATTEMPTS):
        if not explicit:
            network.vlan = next_free_vlan(network.physnet)
        try:
            with transaction.atomic():
                network.save()
                return
        except IntegrityError:
            if explicit or attempt == VLAN_ALLOCATION_ATTEMPTS - 1:
                raise


@transaction.atomic
def create_network(**fields: Any) -> Network:
    """Create a network from validated fields; allocates the VLAN when none is given.
    A tenant's network counts against its `networks` quota (409 past it, nothing made)."""
    network = Network(**fields)
    if network.tenant_id is not None:
        check_quota(network.tenant_id, networks=1)
    if network.tenant is None:
        network.shared = True
    if network.gateway is None and network.ipam in Ipam.MANAGED:
        network.gateway = default_gateway(network.cidr)
    check_capacity(network)
    if network.kind == NetworkKind.SRIOV:
        _save_allocating_vlan(network)
    else:
        network.save()
    reserve_infrastructure_ips(network)
    record(EventKind.NETWORK_CREATED, network, f"network {network} created")
    enqueue_on_commit(names.NETWORK_CHANGED, network.id)
    return network


@transaction.atomic
def create_primary_network(tenant) -> Network:
    """The tenant's overlay network `default` (eth0 of every instance)."""
    network = Network(
        tenant=tenant,
        name=PRIMARY_NETWORK_NAME,
        kind=NetworkKind.OVERLAY,
        cidr=getattr(settings, "CIAO_OVERLAY_CIDR", DEFAULT_OVERLAY_CIDR),
        ipam=Ipam.CONTROLLER,
        mtu=OVERLAY_MTU,
        is_primary=True,
    )
    network.gateway = default_gateway(network.cidr)
    network.save()
    reserve_infrastructure_ips(network)
    record(EventKind.NETWORK_CREATED, network, f"primary network {network} created")
    return network


@transaction.atomic
def update_network(network: Network, changes: dict[str, Any]) -> Network:
    """Apply validated changes; the serializer has already refused in-use changes."""
    locked = Network.objects.select_for_update().get(pk=network.pk)
    if locked.attachments.exists() and any(
        getattr(locked, f) != changes.get(f, getattr(locked, f))
        for f in ("cidr", "vlan", "physnet", "ipv6_cidr", "ipv6_mode")
    ):
        raise Conflict(
            f"network {locked} is in use: cidr, vlan, physnet, ipv6_cidr and ipv6_mode "
            "cannot change"
        )
    newly_managed = locked.ipam not in Ipam.MANAGED or locked.physnet != changes.get(
        "physnet", locked.physnet
    )
    for field, value in changes.items():
        setattr(network, field, value)
    if network.gateway is None and network.ipam in Ipam.MANAGED:
        network.gateway = default_gateway(network.cidr)
    if newly_managed:
        check_capacity(network)  # it will need a DHCP server it does not have
    network.save()
    reserve_infrastructure_ips(network)
    record(EventKind.NETWORK_UPDATED, network, f"network {network} updated", data=changes)
    enqueue_on_commit(names.NETWORK_CHANGED, network.id)
    return network


@retried_on_deadlock
@transaction.atomic
def delete_network(network: Network, *, with_tenant: bool = False) -> None:
    """Refuse (409) while instances are attached or for the tenant's primary network
    (unless the tenant itself is being deleted: `with_tenant`). After commit the worker
    removes the network's DHCP server and resets its VF (`network_deleted`)."""
    lock_servers_of([network.pk])  # before the network's row: see lock_servers_of
    locked = Network.objects.select_for_update().get(pk=network.pk)
    if locked.is_primary and not with_tenant:
        raise Conflict("the tenant's primary network `default` cannot be deleted")
    if in_use := locked.attachments.count():
        raise Conflict(f"network {locked} is in use by {in_use} attachments and cannot be deleted")
    network_id = locked.id
    record(EventKind.NETWORK_DELETED, locked, f"network {locked} deleted")
    locked.delete()
    enqueue_on_commit(names.NETWORK_DELETED, network_id)
