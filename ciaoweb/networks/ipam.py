"""IPv4 allocation for ipam=controller networks: the lowest free address, or a requested one.

IPAllocation rows are the ledger of taken addresses; FreeIPRange rows mirror its
complement (see `free_ranges`), so the lowest free address is one indexed row away
however full the network is. Every change to one goes with the matching change to the
other: `allocate_ip`, `release_ip`, and `reserve_infrastructure_ips` (which rebuilds).

Callers hold the network's row lock (`lock_networks`), so allocations on one network are
serialized; the unique constraint on (network, ip_int) is the last line of defence.
"""

import ipaddress
import logging
from collections.abc import Collection, Iterable

from django.db.models import Q

from ciaoweb.core.exceptions import InvalidInput, NoCapacity
from ciaoweb.instances.choices import AttachmentState
from ciaoweb.networks.choices import Ipam, IpPurpose
from ciaoweb.networks.free_ranges import (
    give_back,
    pop_lowest,
    rebuild_free_ranges,
    take,
    usable_range,
)
from ciaoweb.networks.models import IPAllocation, Network

log = logging.getLogger(__name__)
# Taken addresses found in the free ranges before giving up on them and rebuilding.
DRIFT_ATTEMPTS = 8


def lock_networks(network_ids: Iterable) -> dict:
    """Row-lock networks in id order (a fixed order cannot deadlock); returns them by id.

    FOR NO KEY UPDATE: it serializes the holders but not other transactions' foreign-key
    checks on the row (FOR KEY SHARE). With FOR UPDATE, a migration that holds a host row
    deadlocked at COMMIT (deferred check of its twice-updated attachment) with an instance
    deletion holding the network and waiting for that host row."""
    ids = sorted(set(network_ids), key=str)
    locked = Network.objects.select_for_update(no_key=True).filter(id__in=ids).order_by("id")
    return {network.id: network for network in locked}


def host_range(network: Network) -> tuple[int, int]:
    """First and last usable address as integers (network and broadcast excluded)."""
    return usable_range(network.cidr)


def _record(network: Network, ip: int, purpose: str, attachment=None) -> IPAllocation:
    return IPAllocation.objects.create(
        network=network,
        ip=str(ipaddress.IPv4Address(ip)),
        ip_int=ip,
        purpose=purpose,
        attachment=attachment,
    )


def reserve_infrastructure_ips(network: Network) -> None:
    """(Re)record the gateway and our DHCP server address so no instance gets them, and
    rebuild the free ranges: on create and update (the CIDR may have changed)."""
    network.allocations.exclude(purpose=IpPurpose.ATTACHMENT).delete()
    if network.gateway:
        _record(network, int(ipaddress.IPv4Address(network.gateway)), IpPurpose.GATEWAY)
    if network.dhcp_server_ip and network.dhcp_server_ip != network.gateway:
        _record(network, int(ipaddress.IPv4Address(network.dhcp_server_ip)), IpPurpose.DHCP_SERVER)
    rebuild_free_ranges(network)


def check_requested_ip(network: Network, ip: str) -> str:
    """Why `ip` cannot be given on `network`, or "" when it can."""
    if network.ipam != Ipam.CONTROLLER:
        return (
            f"an ip can only be requested on ipam=controller networks "
            f"({network.name} is {network.ipam})"
        )
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        return f"{ip!r} is not a valid IPv4 address"
    net = network.ip_network
    if address not in net:
        return f"{ip} is not inside {network.cidr}"
    if address == net.network_address:
        return f"{ip} is the network address of {network.cidr}"
    if address == net.broadcast_address:
        return f"{ip} is the broadcast address of {network.cidr}"
    if network.gateway and ip == network.gateway:
        return f"{ip} is the gateway of {network.name}"
    if ip == network.dhcp_server_ip:
        return f"{ip} is reserved for the DHCP server of {network.name}"
    if network.allocations.filter(ip_int=int(address)).exists():
        return f"{ip} is already taken on {network.name}"
    return ""


def allocate_ip(network: Network, attachment, requested: str | None = None) -> str:
    """Record an address for the attachment: the requested one or the lowest free one."""
    if requested:
        if problem := check_requested_ip(network, requested):
            raise InvalidInput({"ip": [problem]})
        ip = int(ipaddress.IPv4Address(requested))
        if not take(network, ip):  # the ledger says free: the ranges had lost it
            log.warning("free ranges of %s lacked free address %s", network, requested)
    else:
        ip = _lowest_free(network)
        if ip is None:
            raise NoCapacity(f"no free IP address left on network {network.name} ({network.cidr})")
    return _record(network, ip, IpPurpose.ATTACHMENT, attachment).ip


def _lowest_free(network: Network) -> int | None:
    """Pop the lowest free address. Ranges that drifted from the ledger (rows written
    around this module) heal: a taken address is dropped and the next one tried; after a
    few, or when no range is left but the ledger has room, they are rebuilt from it."""
    for _ in range(DRIFT_ATTEMPTS):
        popped = pop_lowest(network)
        if popped is None:
            if not _ledger_has_room(network):
                return None
            break
        ip, taken = popped
        if not taken:
            return ip
        log.warning("free ranges of %s listed taken %s", network, ipaddress.IPv4Address(ip))
    log.warning("rebuilding the free ranges of %s from its allocations", network)
    rebuild_free_ranges(network)
    popped = pop_lowest(network)
    return popped[0] if popped else None


def _ledger_has_room(network: Network) -> bool:
    low, high = host_range(network)
    return network.allocations.filter(ip_int__range=(low, high)).count() < high - low + 1


def release_ip(network: Network, allocation: IPAllocation) -> None:
    """Delete the allocation and give its address back to the network's free ranges
    (the caller holds the network's row lock)."""
    allocation.delete()
    give_back(network, allocation.ip_int)


def dynamic_ranges(network: Network) -> list[tuple[str, str]]:
    """Address ranges our DHCP server may hand out on an ipam=dynamic network: the usable
    addresses minus the gateway and the server's own."""
    low, high = host_range(network)
    reserved = sorted(
        int(ipaddress.IPv4Address(ip)) for ip in (network.gateway, network.dhcp_server_ip) if ip
    )
    ranges, start = [], low
    for ip in reserved + [high + 1]:
        if start <= ip - 1:
            ranges.append((start, min(ip - 1, high)))
        start = max(start, ip + 1)
    return [(str(ipaddress.IPv4Address(a)), str(ipaddress.IPv4Address(b))) for a, b in ranges]


def dhcp_reservations(
    network: Network, macs: Collection[str] | None = None, names: Collection[str] = ()
) -> list[dict]:
    """MAC -> IP (and IPv6) reservations for the network's DHCP server, hostname =
    instance name; the agent turns `ipv6` into a DHCPv6 reservation (ipv6_mode=dhcpv6)
    and an AAAA record (either mode). With `macs`, only those MACs' and those of any
    instance named in `names` (whose hostname one of them may hold): a launch's or a
    deletion's refresh (`reservation_scope`).

    A deleting instance's attachments (`releasing`) have none: the refresh sent when the
    deletion is requested must drop them, since their rows only go once the agent has
    reset the VFs and nothing refreshes the server then."""
    if network.ipam not in Ipam.MANAGED:
        return []
    # controller: every attachment with its address. dynamic: IPv4 comes from the range,
    # so only dual-stack attachments, for their IPv6 (a DHCPv6 reservation or, with SLAAC,
    # the AAAA record); `ip` is None there.
    known = ~Q(ip=None) if network.ipam == Ipam.CONTROLLER else ~Q(ipv6=None)
    attachments = network.attachments.filter(known).exclude(state=AttachmentState.RELEASING)
    # Plain tuples, not model instances (128 reservations: 2 ms instead of 10-14).
    fields = ("mac", "ip", "instance__name", "created", "ipv6")
    if macs is None:
        rows = list(attachments.order_by("mac").values_list(*fields))
    else:  # two indexed lookups: an OR of the two kept PostgreSQL to a scan of the network
        rows = list(attachments.filter(mac__in=macs).values_list(*fields))
        rows += (
            attachments.filter(instance__name__in=names).exclude(mac__in=macs).values_list(*fields)
        )
    if network.ipam == Ipam.DYNAMIC:
        rows = [(mac, None, *rest) for mac, _, *rest in rows]
    # One name, one address: a shared network refuses a second instance of a name
    # (instances.services.check_shared_hostname); should two exist anyway (made before
    # that rule), the older keeps the name and the other gets its address without one.
    owner: dict[str, tuple] = {}
    for mac, _, hostname, created, _ in rows:
        if hostname not in owner or (created, mac) < owner[hostname]:
            owner[hostname] = (created, mac)
    dual = bool(network.ipv6_cidr)  # IPv4-only networks' reservations stay as they were
    return [
        {
            "mac": mac,
            "ip": ip,
            "hostname": hostname if owner[hostname][1] == mac else None,
            **({"ipv6": ipv6} if dual else {}),
        }
        for mac, ip, hostname, _, ipv6 in rows
    ]
