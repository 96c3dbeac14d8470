"""IPv6 address arithmetic of a dual-stack network, with no database: shared by the
controller (validation, allocation, specs) and importable from the models.

Layout of a network's IPv6 prefix (docs/api.md, "IPv6"):

- `<prefix>::1` is kept for the network's router, as the IPv4 gateway is the first usable
  address; `<prefix>::2` is our DHCP/DNS server (dnsmasq: DHCPv6, router advertisements,
  AAAA records); `::3`-`::f` are kept for infrastructure too.
- dhcpv6: instances get `<prefix>::10` and up, never the top 128 addresses of the
  prefix (RFC 2526 reserves them for subnet anycast in /64s; one rule for every length).
- slaac: the address is the modified EUI-64 of the MAC (RFC 4291 §2.5.1) in the /64.
"""

from __future__ import annotations

import ipaddress

SLAAC_PREFIXLEN = 64
# dnsmasq serves DHCPv6 ranges of /64 or longer only; /120 still leaves 112 addresses.
DHCPV6_PREFIX_MIN, DHCPV6_PREFIX_MAX = 64, 120
SERVER_OFFSET = 2
FIRST_HOST_OFFSET = 0x10
ANYCAST_RESERVED = 128


def server_address(net: ipaddress.IPv6Network) -> str:
    return str(net.network_address + SERVER_OFFSET)


def host_bounds(net: ipaddress.IPv6Network) -> tuple[int, int]:
    """First and last address (as integers) the controller may give an instance."""
    return (
        int(net.network_address) + FIRST_HOST_OFFSET,
        int(net.broadcast_address) - ANYCAST_RESERVED,
    )


def eui64(net: ipaddress.IPv6Network, mac: str) -> str:
    """The SLAAC address a kernel forms from `mac` in the /64 `net` (addr_gen_mode 0):
    ff:fe in the middle of the MAC, the universal/local bit flipped."""
    octets = bytearray(int(part, 16) for part in mac.split(":"))
    octets[0] ^= 0x02
    interface_id = bytes(octets[:3]) + b"\xff\xfe" + bytes(octets[3:])
    return str(net.network_address + int.from_bytes(interface_id, "big"))


def address_problem(net: ipaddress.IPv6Network, value: str) -> str:
    """Why `value` cannot be an instance's DHCPv6 address in `net` ("" when it can)."""
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return f"{value!r} is not a valid IPv6 address"
    if address not in net:
        return f"{address} is not inside {net}"
    low, high = host_bounds(net)
    if int(address) < low:
        return (
            f"{address} is kept for the network's router and DHCP server "
            f"({net.network_address}/{net.prefixlen} up to "
            f"{ipaddress.IPv6Address(low - 1)}); instances start at {ipaddress.IPv6Address(low)}"
        )
    if int(address) > high:
        return f"{address} is one of the prefix's top {ANYCAST_RESERVED} (subnet anycast) addresses"
    return ""
