"""Instance lifecycle on the controller side: create, delete, migrate, finalize.

Each function runs in one transaction, records events, and opens the Operation that
carries the change out (ciaoweb.operations): the controller's worker advances it after
commit.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from ciaoweb.core.exceptions import Conflict, InvalidInput
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.instances.choices import (
    AttachmentState,
    InstanceKind,
    InstanceState,
    IpSource,
)
from ciaoweb.instances.macs import new_mac
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.scheduler import Placement, check_host, choose_host, place
from ciaoweb.inventory import load
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.networks.choices import Ipam, LeaseState, NetworkKind
from ciaoweb.networks.ipam import allocate_ip, lock_networks, release_ip
from ciaoweb.networks.ipam6 import allocate_ipv6, initial_ipv6_source
from ciaoweb.networks.models import IPAllocation, Lease, Network
from ciaoweb.operations.choices import OperationKind, Step
from ciaoweb.operations.models import Operation
from ciaoweb.operations.services import (
    active_instance_operation,
    end_superseded,
    open_operation,
)
from ciaoweb.tenancy.quotas import check_quota

MAC_INSERT_ATTEMPTS = 3


@dataclass(frozen=True)
class NetworkRequest:
    """One entry of `networks` in the create request."""

    network: Network
    mac: str | None = None
    ip: str | None = None
    position: int | None = None  # index in the request, for error messages
    ipv6: str | None = None


def netns_name(tenant_name: str, instance_name: str) -> str:
    """The instance's namespace: `ciao` prefix (cleanup finds ours by it), unique per
    tenant and instance name."""
    return f"ciao-{tenant_name}-{instance_name}"


def _networks_error(
    requests: list[NetworkRequest], position: int | None, errors: dict
) -> InvalidInput:
    """Bad input shaped like DRF's nested-list errors: `{"networks": [{}, {"ip": [...]}]}`."""
    if position is None:
        return InvalidInput({"networks": [f"{k}: {m}" for k, v in errors.items() for m in v]})
    shaped: list[dict] = [{} for _ in requests]
    shaped[position] = errors
    return InvalidInput({"networks": shaped})


def _ordered_requests(tenant, requests: list[NetworkRequest]) -> list[NetworkRequest]:
    """Primary overlay first (eth0), then the secondaries in request order."""
    primary = Network.objects.get(tenant=tenant, is_primary=True)
    seen: set = set()
    for request in requests:
        if request.network.id in seen:
            raise _networks_error(
                requests,
                request.position,
                {"network": [f"network {request.network} is listed twice"]},
            )
        seen.add(request.network.id)
    given_primary = [r for r in requests if r.network.id == primary.id]
    head = given_primary[0] if given_primary else NetworkRequest(network=primary)
    return [head] + [r for r in requests if r.network.id != primary.id]


def physnet_needs(networks: list[Network]) -> Counter:
    return Counter(n.physnet for n in networks if n.kind == NetworkKind.SRIOV)


def _initial_ip_source(network: Network, kind: str) -> str:
    if network.ipam == Ipam.CONTROLLER:
        return IpSource.CONTROLLER
    if network.ipam == Ipam.DYNAMIC:
        return IpSource.DHCP
    # underlay: a container's DHCP client (run by the agent) will report it; a VM's guest
    # does its own DHCP and nobody may ever tell us.
    return IpSource.UNDERLAY if kind == InstanceKind.CONTAINER else IpSource.UNKNOWN


def _insert_attachment(fields: dict[str, Any], mac_requested: bool) -> Attachment:
    """Insert; a generated MAC that a concurrent request drew too is drawn again."""
    for attempt in range(MAC_INSERT_ATTEMPTS):
        try:
            with transaction.atomic():
                return Attachment.objects.create(**fields)
        except IntegrityError:
            if mac_requested or attempt == MAC_INSERT_ATTEMPTS - 1:
                raise
            fields["mac"] = new_mac()
    raise AssertionError("unreachable")


def add_attachment(
    instance: Instance,
    ifname: str,
    network: Network,
    vf: VirtualFunction | None,
    *,
    mac: str | None = None,
    ip: str | None = None,
    ipv6: str | None = None,
) -> Attachment:
    """Insert a pending attachment holding `vf` (claimed by the caller, who holds the
    network's row lock): its MAC (generated unless given), a controller network's address
    (the requested one or the lowest free; InvalidInput `{"ip": [...]}` if refused), and
    the VF's desired config for the agent. Shared by launch and hot-plug."""
    attachment = _insert_attachment(
        {
            "instance": instance,
            "network": network,
            "ifname": ifname,
            "mac": mac or new_mac(),
            "ip_source": _initial_ip_source(network, instance.kind),
            "ipv6_source": initial_ipv6_source(network, instance.kind),
            "state": AttachmentState.PENDING,
            "vf": vf,
        },
        mac_requested=bool(mac),
    )
    if network.ipam == Ipam.CONTROLLER:
        attachment.ip = allocate_ip(network, attachment, ip)
        attachment.save(update_fields=["ip", "updated"])
    if network.ipv6_cidr or ipv6:  # dual stack: SLAAC's EUI-64 or a DHCPv6 reservation
        attachment.ipv6 = allocate_ipv6(network, attachment, ipv6)
        attachment.save(update_fields=["ipv6", "updated"])
    if vf is not None:
        vf.mac, vf.vlan = attachment.mac, network.vlan  # desired config for the agent
        vf.save(update_fields=["mac", "vlan", "updated"])
    return attachment


def _attach(
    instance: Instance,
    ifname: str,
    request: NetworkRequest,
    network: Network,
    placement: Placement,
    all_requests: list[NetworkRequest],
) -> Attachment:
    vf = placement.take(network.physnet) if network.kind == NetworkKind.SRIOV else None
    try:
        return add_attachment(
            instance, ifname, network, vf, mac=request.mac, ip=request.ip, ipv6=request.ipv6
        )
    except InvalidInput as exc:
        raise _networks_error(all_requests, request.position, exc.detail) from None


def check_shared_hostname(name: str, networks: Iterable[Network]) -> None:
    """Instance names are unique per tenant only, but an instance's name is its hostname
    in each network's one DNS domain: on a shared network a second instance of the same
    name, whichever tenant's, is refused (409; the message names no tenant). Call with
    the networks' rows locked (`lock_networks`), so two creations cannot both pass."""
    for network in networks:
        if network.shared and network.attachments.filter(instance__name=name).exists():
            raise Conflict(
                f"the name {name} is taken on shared network {network.name}: instance names "
                "are its hostnames (DNS), unique across the tenants that use it"
            )


@transaction.atomic
def create_instance(
    *,
    tenant,
    name: str,
    kind: str,
    networks: list[NetworkRequest],
    host: Host | None = None,
) -> Instance:
    """Validate, schedule, claim VFs, allocate MACs and IPs; the instance starts `pending`.
    The tenant's `instances` and `vfs` quotas are checked first, under its row lock (409
    past one, nothing made); that lock comes before the networks', hosts' and VFs'."""
    requests = _ordered_requests(tenant, networks)
    vfs = sum(1 for r in requests if r.network.kind == NetworkKind.SRIOV)
    check_quota(tenant, instances=1, vfs=vfs)
    locked = lock_networks(r.network.id for r in requests)
    targets = [locked[r.network.id] for r in requests]
    check_shared_hostname(name, targets)
    placement = place(physnet_needs(targets), host=host, new_instance=True)

    instance = Instance.objects.create(
        tenant=tenant,
        name=name,
        kind=kind,
        host=placement.host,
        state=InstanceState.PENDING,
        netns=netns_name(tenant.name, name),
    )
    attachments = [
        _attach(instance, f"eth{i}", request, network, placement, networks)
        for i, (request, network) in enumerate(zip(requests, targets, strict=True))
    ]
    record(
        EventKind.INSTANCE_CREATED,
        instance,
        f"instance {instance} created on {placement.host}",
        data={"host": placement.host.name},
    )
    for attachment in attachments:
        record(
            EventKind.ATTACHMENT_CREATED,
            attachment,
            f"{attachment} on {attachment.network} mac {attachment.mac} ip {attachment.ip or '-'}",
        )
    open_operation(OperationKind.CREATE, instance=instance, target_host=placement.host)
    return instance


def lock_instance(instance_id) -> Instance | None:
    return Instance.objects.select_for_update().filter(pk=instance_id).first()


@transaction.atomic
def delete_instance(instance: Instance) -> Instance:
    """Mark `deleting` and open the delete operation; an operation still running on the
    instance is superseded (its late reports are ignored), and a migration it interrupts
    hands the VFs it still holds elsewhere to the delete."""
    locked = lock_instance(instance.pk)
    if locked is None or locked.state == InstanceState.DELETING:
        return locked or instance
    locked.state = InstanceState.DELETING
    locked.generation += 1
    locked.save(update_fields=["state", "generation", "updated"])
    locked.attachments.update(state=AttachmentState.RELEASING)
    record(EventKind.INSTANCE_DELETING, locked, f"instance {locked} is being deleted")
    extra = _supersede(locked)
    open_operation(OperationKind.DELETE, instance=locked, **extra)
    return locked


def _supersede(instance: Instance) -> dict[str, Any]:
    """End the instance's active operation; return what the delete must release besides
    the instance's own VFs (a migration's VFs on its other host)."""
    running = active_instance_operation(instance)
    if running is None:
        return {}
    extra: dict[str, Any] = {}
    if running.kind == OperationKind.MIGRATE and running.vfs:
        if running.step == Step.ROLLBACK:  # back on the source; the target holds new VFs
            holder, index = running.target_host_id, 1
        else:  # on (or moving to) the target; the source still holds the old VFs
            holder, index = running.source_host_id, 0
        held = {a: [ids[index], None] for a, ids in running.vfs.items() if ids[index]}
        if held and holder != instance.host_id:
            extra = {"source_host_id": holder, "vfs": held}
    end_superseded(running, f"superseded by the deletion of {instance}")
    return extra


def _free_vf(vf: VirtualFunction) -> None:
    vf.state, vf.mac, vf.vlan = VfState.FREE, "", None
    vf.save(update_fields=["state", "mac", "vlan", "updated"])


def _release_leases(attachment: Attachment) -> None:
    """The agent has reset the attachment's VF: no client with its MAC can renew, so its
    leases are over now, not at expiry (the DHCP server is told to drop them too)."""
    leases = Lease.objects.select_for_update().filter(
        network_id=attachment.network_id, mac=attachment.mac, state=LeaseState.ACTIVE
    )
    for lease in leases:
        lease.state = LeaseState.RELEASED
        lease.save(update_fields=["state", "updated"])
        record(
            EventKind.LEASE_UPDATED,
            lease,
            f"lease {lease} released: {attachment} deleted",
            data={"action": "del"},
        )


def _ip_allocation(attachment: Attachment) -> IPAllocation | None:
    return getattr(attachment, "ip_allocation", None)  # the reverse one-to-one raises if none


@transaction.atomic
def finalize_instance_deletion(instance_id, released: bool = True) -> bool:
    """Free the instance's IPs and MACs and delete its rows, once the agent has released
    its VFs (then free too). `released=False` (its host never answered): the VFs stay
    `releasing`, never handed out, until that host re-registers without them.
    Idempotent: False when the instance is already gone."""
    instance = lock_instance(instance_id)
    if instance is None:
        return False
    attachments = list(instance.attachments.select_related("vf", "network", "ip_allocation"))
    # Addresses go back to their networks' free ranges, under the networks' row locks.
    # Instance, then networks, then leases and VFs: nothing locks a network and then an
    # existing instance (create_instance locks its networks before its instance exists).
    networks = lock_networks(a.network_id for a in attachments if _ip_allocation(a))
    load.leave(instance.host)  # after the networks, before the VFs (see inventory.load)
    for attachment in attachments:
        remove_attachment(attachment, networks, released)
    record(EventKind.INSTANCE_DELETED, instance, f"instance {instance} deleted")
    instance.delete()
    return True


def remove_attachment(attachment: Attachment, networks: dict, released: bool) -> None:
    """Delete the attachment once its host has unplugged it (instance deletion, detach):
    its leases end, its address goes back to its network (`networks`: the locked rows by
    id, see `lock_networks`), its VF is free, or stays `releasing` (`released=False`: its
    host never confirmed) until that host re-registers without it."""
    vf, allocation = attachment.vf, _ip_allocation(attachment)
    record(EventKind.ATTACHMENT_DELETED, attachment, f"{attachment} removed")
    _release_leases(attachment)
    if allocation is not None:
        release_ip(networks[attachment.network_id], allocation)
    attachment.delete()  # leases keep a null attachment
    if vf is not None and released:
        _free_vf(vf)
    elif vf is not None:
        vf.state = VfState.RELEASING
        vf.save(update_fields=["state", "updated"])


@transaction.atomic
def migrate_instance(
    instance: Instance, target: Host | None = None, parent: Operation | None = None
) -> Instance:
    """Check the target (or choose one), mark `migrating` and open the migration
    (`parent`: the evacuation it belongs to); orchestration moves the VFs."""
    locked = lock_instance(instance.pk)
    if locked is None:
        raise Conflict("the instance no longer exists")
    if locked.state not in InstanceState.MIGRATABLE:
        raise Conflict(
            f"instance {locked} is {locked.state}: only running, stopped or error instances migrate"
        )
    if (busy := active_instance_operation(locked)) is not None:
        raise Conflict(f"instance {locked} has an operation in progress: {busy.kind} ({busy.step})")
    needs = physnet_needs([a.network for a in locked.attachments.select_related("network")])
    if target is not None:
        if target.pk == locked.host_id:
            raise InvalidInput({"host": [f"instance already runs on host {target.name}"]})
        check_host(target, needs)
    else:
        target = choose_host(needs, exclude=[locked.host_id] if locked.host_id else [])
    locked.state = InstanceState.MIGRATING
    locked.generation += 1
    locked.save(update_fields=["state", "generation", "updated"])
    record(
        EventKind.INSTANCE_MIGRATING,
        locked,
        f"instance {locked} migrating to {target.name}",
        data={"from": locked.host.name if locked.host else None, "to": target.name},
    )
    open_operation(
        OperationKind.MIGRATE,
        instance=locked,
        source_host=locked.host,
        target_host=target,
        parent=parent,
    )
    return locked


@transaction.atomic
def retarget_attachments(instance_id, host_id) -> dict:
    """For orchestration when it executes a migration: claim VFs on the target host for
    the instance's SR-IOV attachments and set `instance.host`. The old VFs go to
    `releasing` (never handed out) until `vf_released` after the old agent reset them.
    Returns {attachment_id: (old_vf_id | None, new_vf_id)}; raises NoCapacity/InvalidInput."""
    instance = lock_instance(instance_id)
    host = Host.objects.get(pk=host_id)
    load.move(instance.host, host)  # the host rows before the VF rows (see inventory.load)
    attachments = list(instance.attachments.select_related("network", "vf"))
    placement = place(physnet_needs([a.network for a in attachments]), host=host)
    moved = {}
    for attachment in attachments:
        if attachment.network.kind != NetworkKind.SRIOV:
            continue
        old, new = attachment.vf, placement.take(attachment.network.physnet)
        if old is not None:
            old.state = VfState.RELEASING
            old.save(update_fields=["state", "updated"])
        attachment.vf = None
        attachment.save(update_fields=["vf", "updated"])  # the one-to-one frees `old` first
        new.mac, new.vlan = attachment.mac, attachment.network.vlan
        new.save(update_fields=["mac", "vlan", "updated"])
        attachment.vf = new
        attachment.state = AttachmentState.PENDING
        attachment.save(update_fields=["vf", "state", "updated"])
        record(EventKind.ATTACHMENT_UPDATED, attachment, f"{attachment} moves to {host.name}")
        moved[attachment.id] = (old.id if old else None, new.id)
    instance.host = host
    instance.save(update_fields=["host", "updated"])
    return moved


@transaction.atomic
def free_unheld_releasing_vfs(host: Host, held: Iterable[str]) -> list[VirtualFunction]:
    """`releasing` VFs of `host` that no attachment uses and its agent no longer holds
    (`held`: its reported "pf/index" keys) are free: their release report was lost, e.g.
    with a controller worker killed mid-task (the broker redelivers only after its
    visibility timeout). A migrating instance's source VFs are left alone: its agent
    holds them, and resume_migration finds them by MAC."""
    held = set(held)
    migrating = Attachment.objects.filter(instance__state=InstanceState.MIGRATING)
    stale = (
        VirtualFunction.objects.select_for_update(of=("self",))
        .filter(pf__host=host, state=VfState.RELEASING, attachment__isnull=True)
        .exclude(mac__in=migrating.values("mac"))
        .select_related("pf")
    )
    freed = [vf for vf in stale if f"{vf.pf.name}/{vf.index}" not in held]
    for vf in freed:
        _free_vf(vf)
    return freed


def vf_released(vf_id) -> None:
    """The agent reset a VF no attachment owns any more (`releasing` or orphaned)."""
    vf = VirtualFunction.objects.select_for_update().filter(pk=vf_id).first()
    if vf is not None and not Attachment.objects.filter(vf=vf).exists():
        _free_vf(vf)
