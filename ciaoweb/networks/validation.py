"""The network rules of DESIGN §4 that need more than one field or the database.

`validate_network(attrs, instance)` takes the serializer's proposed values (merged with
the current ones on update) and raises InvalidInput with one message per offending field.
A message names another network only if it is the proposing tenant's own, or with
`names_others` (cluster admins): a member never learns another tenant's names.

`required_capabilities(network)` is which optional PF knobs (ciaoweb.inventory.
capabilities) a network's VFs need; a network needing one that every PF of its physnet
lacks is refused here, and the scheduler skips PFs that lack one (`requires`).
"""

import ipaddress
from collections.abc import Mapping
from typing import Any

from ciaoweb.core.exceptions import InvalidInput
from ciaoweb.inventory.capabilities import LABELS
from ciaoweb.inventory.models import PhysicalFunction
from ciaoweb.networks.choices import Ipam, Ipv6Mode, NetworkKind
from ciaoweb.networks.ipv6 import DHCPV6_PREFIX_MAX, DHCPV6_PREFIX_MIN, SLAAC_PREFIXLEN
from ciaoweb.networks.models import Network

PREFIX_MIN, PREFIX_MAX = 8, 30
IN_USE_IMMUTABLE = ("cidr", "vlan", "physnet", "ipam", "gateway", "ipv6_cidr", "ipv6_mode")


def parse_cidr(value: str) -> ipaddress.IPv4Network:
    """A valid IPv4 network /8-/30 written with its network address."""
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ipaddress.AddressValueError as exc:
        raise InvalidInput(f"{value!r} is not a valid IPv4 CIDR: {exc}") from exc
    except ValueError as exc:  # host bits set, bad prefix
        raise InvalidInput(f"{value!r} is not a valid IPv4 CIDR: {exc}") from exc
    if not PREFIX_MIN <= net.prefixlen <= PREFIX_MAX:
        raise InvalidInput(
            f"prefix length must be between /{PREFIX_MIN} and /{PREFIX_MAX}, got /{net.prefixlen}"
        )
    return net


def parse_ipv6_cidr(value: str) -> ipaddress.IPv6Network:
    """A valid IPv6 network written with its network address (length rules: ipv6_problems)."""
    try:
        net = ipaddress.IPv6Network(value, strict=True)
    except ValueError as exc:  # not IPv6, host bits set, bad prefix
        raise InvalidInput(f"{value!r} is not a valid IPv6 CIDR: {exc}") from exc
    if net.is_multicast or net.is_loopback or net.is_link_local or net.is_unspecified:
        raise InvalidInput(f"{net} is not a unicast prefix an instance can use")
    return net


def ipv6_problems(net: ipaddress.IPv6Network, mode: str, ipam: str) -> dict[str, list[str]]:
    """The prefix length each mode needs, and the modes an underlay network allows."""
    problems: dict[str, list[str]] = {}
    if mode == Ipv6Mode.SLAAC and net.prefixlen != SLAAC_PREFIXLEN:
        problems["ipv6_cidr"] = [
            f"ipv6_mode=slaac needs a /{SLAAC_PREFIXLEN} (SLAAC forms a 64-bit interface id), "
            f"got /{net.prefixlen}"
        ]
    elif mode == Ipv6Mode.DHCPV6 and not DHCPV6_PREFIX_MIN <= net.prefixlen <= DHCPV6_PREFIX_MAX:
        problems["ipv6_cidr"] = [
            f"ipv6_mode=dhcpv6 needs a prefix between /{DHCPV6_PREFIX_MIN} and "
            f"/{DHCPV6_PREFIX_MAX}, got /{net.prefixlen}"
        ]
    if ipam == Ipam.UNDERLAY and mode != Ipv6Mode.SLAAC:
        problems["ipv6_mode"] = [
            "an ipam=underlay network takes ipv6_mode=slaac: the physical network's routers "
            "announce the prefix, and the agent reports the address a container forms"
        ]
    return problems


def gateway_problem(net: ipaddress.IPv4Network, gateway: str) -> str:
    address = ipaddress.IPv4Address(gateway)
    if address not in net:
        return f"{gateway} is not inside {net}"
    if address == net.network_address:
        return f"{gateway} is the network address of {net}"
    if address == net.broadcast_address:
        return f"{gateway} is the broadcast address of {net}"
    return ""


def _overlapping(
    attrs: dict[str, Any], net: ipaddress.IPv4Network | ipaddress.IPv6Network, instance
) -> Network | None:
    """Another network of the same tenant (or of the shared pool) on the same physnet whose
    CIDR (or IPv6 prefix, for an IPv6 `net`) overlaps. Few networks share a tenant and
    physnet, so comparing in Python is fine."""
    siblings = Network.objects.filter(tenant=attrs.get("tenant"), physnet=attrs.get("physnet", ""))
    if instance is not None:
        siblings = siblings.exclude(pk=instance.pk)
    for other in siblings.only("name", "cidr", "ipv6_cidr", "tenant"):
        theirs = other.ip_network if net.version == 4 else other.ipv6_network
        if theirs is not None and theirs.overlaps(net):
            return other
    return None


def required_capabilities(network: Network | Mapping[str, Any]) -> set[str]:
    """The optional PF knobs the VFs of `network` (a Network, or proposed attributes)
    need. Empty today: the agent programs a VF with MAC, 802.1Q VLAN, spoofchk on and
    trust off only, and no network attribute asks for more. When one does, it maps here:
    a VF link state other than auto -> "link_state", a guaranteed minimum rate ->
    "min_tx_rate", an 802.1ad (QinQ) VLAN protocol -> "vlan_8021ad"."""
    return set()


def capability_problems(physnet: str, knobs: set[str]) -> list[str]:
    """A message per knob that every PF on `physnet` reports lacking (False). A physnet
    without PFs yet, or with one PF that has the knob or has not reported it, is fine."""
    flags = list(
        PhysicalFunction.objects.filter(physnet=physnet).values_list("capabilities", flat=True)
    )
    problems = []
    for knob in sorted(knobs):
        if flags and all(isinstance(c, dict) and c.get(knob) is False for c in flags):
            label = LABELS.get(knob, knob)
            problems.append(
                f"this network needs {label}, which no PF on physnet {physnet} supports "
                f"(all {len(flags)} report {label}: not supported)"
            )
    return problems


def validate_network(
    attrs: dict[str, Any], instance: Network | None, *, names_others: bool = False
) -> None:
    errors: dict[str, list[str]] = {}
    tenant = attrs.get("tenant")
    own_tenant_id = getattr(tenant, "pk", tenant)

    def which(other: Network) -> str:
        """` by <other>` where the requester may know it; nothing for another tenant's."""
        if names_others or (other.tenant_id is not None and other.tenant_id == own_tenant_id):
            return f" by {other}"
        return ""

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    kind = attrs.get("kind")
    if instance is None and kind == NetworkKind.OVERLAY:
        fail(
            "kind",
            "the overlay network `default` is created with its tenant; create sriov networks",
        )
    if instance is not None:
        for field in ("kind", "tenant"):
            if getattr(instance, field) != attrs.get(field):
                fail(field, f"{field} cannot change after creation")
        if instance.is_primary and attrs.get("name") != instance.name:
            fail("name", "the primary network `default` cannot be renamed")
        if instance.pk and (in_use := instance.attachments.count()):
            for field in IN_USE_IMMUTABLE:
                if getattr(instance, field) != attrs.get(field):
                    fail(field, f"network is in use by {in_use} attachments: {field} cannot change")

    if kind == NetworkKind.SRIOV and not attrs.get("physnet"):
        fail("physnet", "an sriov network needs a physnet")
    if kind == NetworkKind.OVERLAY:
        if attrs.get("vlan") is not None and instance is None:
            fail("vlan", "overlay networks have no VLAN")
        if attrs.get("ipam") != Ipam.CONTROLLER:
            fail("ipam", "the overlay network uses ipam=controller")

    vlan = attrs.get("vlan")
    if kind == NetworkKind.SRIOV and vlan is not None and attrs.get("physnet"):
        clash = Network.objects.filter(
            kind=NetworkKind.SRIOV, physnet=attrs["physnet"], vlan=vlan
        ).exclude(pk=getattr(instance, "pk", None))
        if other := clash.first():
            fail("vlan", f"VLAN {vlan} is already used on physnet {attrs['physnet']}{which(other)}")
    elif kind == NetworkKind.SRIOV and vlan is None and instance is not None:
        fail("vlan", "an sriov network needs a VLAN")

    if kind == NetworkKind.SRIOV and attrs.get("physnet"):
        if knobs := required_capabilities(attrs):
            for problem in capability_problems(attrs["physnet"], knobs):
                fail("physnet", problem)

    if instance is not None and attrs.get("tenant") is None and not attrs.get("shared"):
        fail("shared", "a network without tenant must be shared")

    try:
        net = parse_cidr(attrs.get("cidr", ""))
    except InvalidInput as exc:
        errors.setdefault("cidr", []).extend(exc.messages())
        net = None
    if net is not None:
        if gateway := attrs.get("gateway"):
            if problem := gateway_problem(net, gateway):
                fail("gateway", problem)
            elif attrs.get("ipam") in Ipam.MANAGED and gateway == str(net.broadcast_address - 1):
                fail("gateway", f"{gateway} is reserved for the network's DHCP server")
        if other := _overlapping(attrs, net, instance):  # the same tenant's (or shared pool's)
            fail("cidr", f"{net} overlaps {other.cidr} of network {other} on the same physnet")
    _validate_ipv6(attrs, instance, fail)
    if errors:
        raise InvalidInput(errors)


def _validate_ipv6(attrs: dict[str, Any], instance: Network | None, fail) -> None:
    """ipv6_cidr / ipv6_mode (DESIGN §3a): a valid prefix of the length its mode needs,
    not overlapping the tenant's other prefixes on the physnet; overlay stays IPv4-only."""
    cidr, mode = attrs.get("ipv6_cidr") or "", attrs.get("ipv6_mode") or ""
    if not cidr:
        if mode:
            fail("ipv6_mode", "ipv6_mode needs an ipv6_cidr")
        return
    if attrs.get("kind") == NetworkKind.OVERLAY:
        fail("ipv6_cidr", "overlay networks are IPv4-only: give SR-IOV networks an ipv6_cidr")
        return
    try:
        net = parse_ipv6_cidr(cidr)
    except InvalidInput as exc:
        for message in exc.messages():
            fail("ipv6_cidr", message)
        return
    for field, messages in ipv6_problems(net, mode, attrs.get("ipam", "")).items():
        for message in messages:
            fail(field, message)
    if other := _overlapping(attrs, net, instance):
        message = f"{net} overlaps {other.ipv6_cidr} of network {other} on the same physnet"
        fail("ipv6_cidr", message)
