"""IPv6 addresses of attachments on dual-stack networks (layout: `networks.ipv6`).

- slaac: the EUI-64 of the attachment's MAC, computed, never stored anywhere else: the
  MAC is unique, so is the address, and it survives migration with the MAC.
- dhcpv6 (ipam controller or dynamic): the controller reserves the lowest free address
  of the host range, or a requested one; the network's dnsmasq serves it to that MAC.
- underlay: nobody here chooses; the agent reports what a container formed.

The ledger is the attachments themselves (unique on network + ipv6): a prefix holds
far more addresses than a network has attachments, so the lowest free one is found by
walking the taken ones in Python (one query, as many rows as the network's dual-stack
attachments). Callers hold the network's row lock (`ipam.lock_networks`).
"""

from __future__ import annotations

import ipaddress

from ciaoweb.core.exceptions import InvalidInput, NoCapacity
from ciaoweb.instances.choices import InstanceKind, Ipv6Source
from ciaoweb.networks.choices import Ipam, Ipv6Mode
from ciaoweb.networks.ipv6 import address_problem, eui64, host_bounds
from ciaoweb.networks.models import Network


def initial_ipv6_source(network: Network, kind: str) -> str:
    """The attachment's `ipv6_source` at creation ("" on an IPv4-only network)."""
    if not network.ipv6_cidr:
        return ""
    if network.ipam == Ipam.UNDERLAY:
        return Ipv6Source.UNDERLAY if kind == InstanceKind.CONTAINER else Ipv6Source.UNKNOWN
    return Ipv6Source.SLAAC if network.ipv6_mode == Ipv6Mode.SLAAC else Ipv6Source.CONTROLLER


def check_requested_ipv6(network: Network, ipv6: str, exclude_pk=None) -> str:
    """Why `ipv6` cannot be requested on `network`, or "" when it can."""
    if not network.ipv6_cidr:
        return f"network {network.name} has no ipv6_cidr"
    if network.ipam == Ipam.UNDERLAY:
        return f"an ipv6 cannot be requested on ipam=underlay network {network.name}"
    if network.ipv6_mode == Ipv6Mode.SLAAC:
        return (
            f"network {network.name} is ipv6_mode=slaac: the address is the EUI-64 of the "
            "MAC (choose the mac instead)"
        )
    if problem := address_problem(network.ipv6_network, ipv6):
        return problem
    taken = network.attachments.filter(ipv6=str(ipaddress.IPv6Address(ipv6)))
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        return f"{ipaddress.IPv6Address(ipv6)} is already taken on {network.name}"
    return ""


def allocate_ipv6(network: Network, attachment, requested: str | None = None) -> str | None:
    """The attachment's IPv6 address (not saved), or None where nobody knows it yet."""
    if requested and (problem := check_requested_ipv6(network, requested, attachment.pk)):
        raise InvalidInput({"ipv6": [problem]})
    if not network.ipv6_cidr or network.ipam == Ipam.UNDERLAY:
        return None
    if network.ipv6_mode == Ipv6Mode.SLAAC:
        return eui64(network.ipv6_network, attachment.mac)
    if requested:
        return str(ipaddress.IPv6Address(requested))
    return _lowest_free(network, exclude_pk=attachment.pk)


def _lowest_free(network: Network, exclude_pk=None) -> str:
    low, high = host_bounds(network.ipv6_network)
    rows = network.attachments.exclude(ipv6=None)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    taken = {int(ipaddress.IPv6Address(a)) for a in rows.values_list("ipv6", flat=True)}
    candidate = low
    while candidate in taken and candidate <= high:
        candidate += 1
    if candidate > high:
        raise NoCapacity(
            f"no free IPv6 address left on network {network.name} ({network.ipv6_cidr})"
        )
    return str(ipaddress.IPv6Address(candidate))
