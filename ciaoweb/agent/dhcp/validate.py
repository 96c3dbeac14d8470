"""Every value that reaches a dnsmasq/udhcpc command line or config file passes here first.

Validation is by whitelist so a value can never smuggle an option (`--...`), a comma
(a second dhcp-host field), a newline (a second config line) or a path.
"""

from __future__ import annotations

import ipaddress
import re

from ..drivers.base import InvalidArgument

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}\Z")
NETNS_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}\Z")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


def mac(value: str) -> str:
    value = str(value).lower()
    if not MAC_RE.match(value):
        raise InvalidArgument(f"bad MAC address {value!r}")
    if int(value[:2], 16) & 1 or value == "00:00:00:00:00:00":
        raise InvalidArgument(f"MAC {value} is multicast or all-zero")
    return value


def hostname(value: str) -> str:
    value = str(value)
    # ASCII first: str.lower() maps some non-ASCII letters to ASCII ones (Kelvin sign -> k).
    value = value.lower() if value.isascii() else value
    if not LABEL_RE.match(value):
        raise InvalidArgument(f"hostname {value!r} is not a DNS label")
    return value


def domain(value: str) -> str:
    value = str(value)
    value = value.lower().rstrip(".") if value.isascii() else value
    labels = value.split(".")
    if not value or len(value) > 253 or not all(LABEL_RE.match(label) for label in labels):
        raise InvalidArgument(f"bad DNS domain {value!r}")
    return value


def ifname(value: str) -> str:
    if not IFNAME_RE.match(str(value)) or value in (".", ".."):
        raise InvalidArgument(f"bad interface name {value!r}")
    return value


def netns(value: str) -> str:
    # A namespace name is a file name under /run/netns: never `.` or `..`.
    if not NETNS_RE.match(str(value)) or value in (".", ".."):
        raise InvalidArgument(f"bad network namespace name {value!r}")
    return value


def ident(value: str) -> str:
    """Ids used in file names (network ids, UUIDs)."""
    if not ID_RE.match(str(value)):
        raise InvalidArgument(f"bad id {value!r}")
    return str(value)


def network(value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(str(value), strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"bad IPv4 CIDR {value!r}: {exc}") from exc
    if not 8 <= net.prefixlen <= 30:
        raise InvalidArgument(f"CIDR {value} must be /8../30")
    return net


def host_ip(value: str, net: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """An IPv4 address usable by a host of `net` (not network/broadcast)."""
    try:
        ip = ipaddress.IPv4Address(str(value))
    except ValueError as exc:
        raise InvalidArgument(f"bad IPv4 address {value!r}") from exc
    if ip not in net or ip in (net.network_address, net.broadcast_address):
        raise InvalidArgument(f"{ip} is not a host address of {net}")
    return ip


def ipv6_network(value: str) -> ipaddress.IPv6Network:
    try:
        net = ipaddress.IPv6Network(str(value), strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"bad IPv6 CIDR {value!r}: {exc}") from exc
    if not 64 <= net.prefixlen <= 120:
        raise InvalidArgument(f"IPv6 CIDR {value} must be /64../120")
    return net


def ipv6_host(value: str, net: ipaddress.IPv6Network) -> ipaddress.IPv6Address:
    """An IPv6 address inside `net`, not its subnet-router anycast (all-zero) address."""
    try:
        ip = ipaddress.IPv6Address(str(value))
    except ValueError as exc:
        raise InvalidArgument(f"bad IPv6 address {value!r}") from exc
    if ip not in net or ip == net.network_address:
        raise InvalidArgument(f"{ip} is not a host address of {net}")
    return ip
