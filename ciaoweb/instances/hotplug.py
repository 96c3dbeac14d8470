"""Hot-plug on the controller side: an SR-IOV interface added to a running instance
(`attach_network`) or taken out of it (`detach_attachment`, `finalize_detach`).

Like a launch, each request runs in one transaction that checks everything, claims the
VF and the address, and opens the operation that carries it out (kinds `attach` and
`detach`, ciaoweb.orchestration.workflows): a refusal leaves nothing behind. The
operation owns the instance while it runs (one at a time, like a migration), and the
instance's generation grows, so a spec sent before the change is stale for its agent.

Lock order as a launch's: the tenant's row (quota), then the instance, its operation,
the network, the VFs.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable

from django.db import transaction

from ciaoweb.core.exceptions import Conflict, InvalidInput
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.instances.choices import AttachmentState, InstanceState
from ciaoweb.instances.models import MAX_NETWORKS, PRIMARY_IFNAME, Attachment, Instance
from ciaoweb.instances.scheduler import claim_on, requirements
from ciaoweb.instances.services import (
    add_attachment,
    check_shared_hostname,
    lock_instance,
    remove_attachment,
)
from ciaoweb.networks.choices import Ipam, NetworkKind
from ciaoweb.networks.ipam import check_requested_ip, lock_networks
from ciaoweb.networks.models import Network
from ciaoweb.operations.choices import OperationKind
from ciaoweb.operations.services import active_instance_operation, open_operation
from ciaoweb.tenancy.quotas import check_quota


def next_ifname(attachments: Iterable[Attachment]) -> str:
    """The lowest `ethN` (N >= 1) the instance does not use: what its namespace gets next."""
    taken = {a.ifname for a in attachments}
    return next(f"eth{n}" for n in itertools.count(1) if f"eth{n}" not in taken)


def _owned(instance: Instance | None, doing: str, states: Iterable[str]) -> Instance:
    """The locked instance, in one of `states` and with no operation running (409s)."""
    if instance is None:
        raise Conflict("the instance no longer exists")
    if instance.state not in states:
        raise Conflict(
            f"instance {instance} is {instance.state}: {doing} needs it {' or '.join(states)}"
        )
    if (busy := active_instance_operation(instance)) is not None:
        raise Conflict(
            f"instance {instance} has an operation in progress: {busy.kind} "
            f"({busy.step or busy.state}); try again when it has finished"
        )
    return instance


def _check_network(instance: Instance, network: Network, existing: list[Attachment]) -> None:
    problem = ""
    if network.kind != NetworkKind.SRIOV:
        problem = f"network {network} is not an SR-IOV network: only VFs are hot-plugged"
    elif network.tenant_id not in (None, instance.tenant_id) and not network.shared:
        problem = f"network {network.pk} is not available to {instance.tenant}"
    elif on := next((a for a in existing if a.network_id == network.pk), None):
        problem = f"instance {instance.name} already has {on.ifname} on network {network}"
    if problem:
        raise InvalidInput({"network": [problem]})


def _bump(instance: Instance) -> None:
    instance.generation += 1
    instance.save(update_fields=["generation", "updated"])


@transaction.atomic
def attach_network(
    instance: Instance,
    network: Network,
    *,
    mac: str | None = None,
    ip: str | None = None,
    ipv6: str | None = None,
) -> Attachment:
    """Add a pending interface on `network` to a running instance: the next `ethN`, a VF
    of the instance's own host on the network's physnet (NoCapacity, a 409, when it has
    none free), a MAC (`mac` or a generated one) and, on a controller network, an
    address (`ip` or the lowest free); the tenant's `vfs` quota is checked first."""
    check_quota(instance.tenant_id, vfs=1)  # the tenant's row before any other
    locked = _owned(lock_instance(instance.pk), "a hot-plug", [InstanceState.RUNNING])
    existing = list(locked.attachments.all())
    _check_network(locked, network, existing)
    if len(existing) > MAX_NETWORKS:  # eth0 and MAX_NETWORKS secondaries
        raise Conflict(
            f"instance {locked.name} has {len(existing) - 1} secondary interfaces, the most "
            f"an instance may have ({MAX_NETWORKS}): detach one first"
        )
    if ip and network.ipam != Ipam.CONTROLLER:
        raise InvalidInput({"ip": [check_requested_ip(network, ip)]})
    target = lock_networks([network.pk]).get(network.pk)
    if target is None:
        raise Conflict(f"network {network.name} no longer exists")
    check_shared_hostname(locked.name, [target])
    placement = claim_on(locked.host, Counter({target.physnet: 1}), requires=requirements([target]))
    _bump(locked)
    attachment = add_attachment(
        locked,
        next_ifname(existing),
        target,
        placement.take(target.physnet),
        mac=mac,
        ip=ip,
        ipv6=ipv6,  # a dual-stack dhcpv6 network's requested address (networks.ipam6)
    )
    record(
        EventKind.ATTACHMENT_CREATED,
        attachment,
        f"{attachment} on {target} mac {attachment.mac} ip {attachment.ip or '-'}: hot-plug",
    )
    record(
        EventKind.INSTANCE_UPDATED,
        locked,
        f"instance {locked}: {attachment.ifname} on {target} being plugged",
    )
    open_operation(OperationKind.ATTACH, instance=locked, attachment=attachment)
    return attachment


@transaction.atomic
def detach_attachment(attachment: Attachment) -> Attachment:
    """Mark the interface `releasing` and open its detach: the host unplugs it and resets
    its VF, then `finalize_detach` frees what it held. The primary overlay interface
    (eth0) is refused (InvalidInput, a 400)."""
    locked = lock_instance(attachment.instance_id)
    current = (
        locked.attachments.select_related("network").filter(pk=attachment.pk).first()
        if locked is not None
        else None
    )
    if current is None:
        raise Conflict("the interface no longer exists")
    if current.ifname == PRIMARY_IFNAME or current.network.is_primary:
        raise InvalidInput(
            [f"{current.ifname} is the instance's primary overlay interface: it cannot be removed"]
        )
    # Any settled instance: an interface of a failed one may be taken out too.
    _owned(locked, "a detach", InstanceState.MIGRATABLE)
    _bump(locked)
    current.state = AttachmentState.RELEASING
    current.save(update_fields=["state", "updated"])
    record(EventKind.ATTACHMENT_UPDATED, current, f"{current} is being unplugged")
    record(EventKind.INSTANCE_UPDATED, locked, f"instance {locked}: {current.ifname} unplugging")
    open_operation(OperationKind.DETACH, instance=locked, attachment=current)
    return current


@transaction.atomic
def finalize_detach(attachment_id, released: bool = True) -> Network | None:
    """Remove an interface its host has unplugged (`released=False`: the host never
    confirmed; its VF stays `releasing` until the host re-registers without it).
    Returns its network (whose DHCP reservations the caller refreshes), None if gone."""
    instance_id = (
        Attachment.objects.filter(pk=attachment_id).values_list("instance_id", flat=True).first()
    )
    instance = lock_instance(instance_id) if instance_id else None  # the instance first
    attachment = (
        Attachment.objects.select_related("vf", "network", "ip_allocation")
        .filter(pk=attachment_id)
        .first()
    )
    if instance is None or attachment is None:
        return None
    network = attachment.network
    remove_attachment(attachment, lock_networks([network.pk]), released)
    record(
        EventKind.INSTANCE_UPDATED,
        instance,
        f"instance {instance}: {attachment.ifname} on {network} removed",
    )
    return network
