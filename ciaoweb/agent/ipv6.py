"""IPv6 on a container's interface: what the agent does as the container's runtime.

Kernel facts this relies on (measured in our namespaces, docs/simulator.md "IPv6"): a new
namespace starts with accept_ra=1, autoconf=1, addr_gen_mode=0 (EUI-64) and
accept_dad=1, dad_transmits=1 on each interface; DAD keeps a new address `tentative`
(unusable) for about 1.5 s after link up, the link-local one included.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time

SLAAC_TIMEOUT = 15.0  # the first RA answers the kernel's solicitation within ~1 s, DAD ~1.5 s
POLL_SECONDS = 0.05


def sysctl(netns: str, ifname: str, **values: int) -> None:
    """Per-interface IPv6 sysctls inside `netns` (/proc/sys/net is per namespace)."""
    args = [f"net.ipv6.conf.{ifname}.{key}={value}" for key, value in values.items()]
    subprocess.run(
        ["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *args],
        check=True,
        capture_output=True,
    )


# The namespace's defaults, before any VF is plugged into it (a netdev moved in takes
# them): no DAD, and router advertisements ignored (we set the address; the kernel would
# add a second one from a SLAAC prefix). One process for all: each `ip netns exec` costs.
# No DAD: the controller makes every MAC (so every link-local and SLAAC address) and every
# reservation unique, and a migration's make-before-break has both copies of an instance
# on the VLAN with the same MAC for a moment, where DAD would fail the target's addresses.
NAMESPACE_SYSCTLS = (
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_ra=0",
    "net.ipv6.conf.default.autoconf=0",
)


def namespace_defaults(netns: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *NAMESPACE_SYSCTLS],
        check=True,
        capture_output=True,
    )


def configure_static(netns: str, ifname: str, address: str, cidr: str) -> None:
    """`address` in `cidr` on the interface, usable at once (the namespace's defaults
    already ignore RAs: `namespace_defaults`)."""
    if not address:
        raise RuntimeError(f"no IPv6 address in the spec for {ifname}")
    net = ipaddress.IPv6Network(cidr)
    ip = ipaddress.IPv6Address(address)
    if ip not in net:
        raise RuntimeError(f"{ip} is not inside {net}")
    subprocess.run(
        ["ip", "-n", netns, "addr", "replace", f"{ip}/{net.prefixlen}", "dev", ifname, "nodad"],
        check=True,
        capture_output=True,
    )


def global_addresses(netns: str, ifname: str) -> list[tuple[str, bool]]:
    """(address, tentative) of each global IPv6 address of the interface."""
    shown = subprocess.run(
        ["ip", "-n", netns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "global"],
        check=True,
        capture_output=True,
        text=True,
    )
    found = []
    for line in shown.stdout.splitlines():
        fields = line.split()
        if "inet6" in fields:
            address = fields[fields.index("inet6") + 1].split("/")[0]
            found.append((address, "tentative" in fields))
    return found


def wait_for_slaac(netns: str, ifname: str, cidr: str, timeout: float = SLAAC_TIMEOUT) -> str:
    """The address the kernel forms in `cidr` from router advertisements (not tentative);
    RuntimeError if none within `timeout` (no router announces the prefix)."""
    net = ipaddress.IPv6Network(cidr)
    sysctl(netns, ifname, accept_ra=1, autoconf=1)
    # The kernel solicits routers only when the link comes up with accept_ra on (the
    # namespace's defaults had it off): bounce the link rather than wait minutes for an
    # unsolicited advertisement. IPv4 addresses stay across it.
    for state in ("down", "up"):
        subprocess.run(
            ["ip", "-n", netns, "link", "set", ifname, state], check=True, capture_output=True
        )
    deadline = time.monotonic() + timeout
    while True:
        for address, tentative in global_addresses(netns, ifname):
            if not tentative and ipaddress.IPv6Address(address) in net:
                return address
        if time.monotonic() > deadline:
            raise RuntimeError(f"no SLAAC address in {net} on {ifname} after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
