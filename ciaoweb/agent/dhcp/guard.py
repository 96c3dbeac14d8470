"""The chaddr guard: DHCP to a managed server must carry its sender's own MAC.

dnsmasq reads DHCP from a UDP socket and trusts `chaddr`, the client hardware address
inside the BOOTP message, so on a shared `dynamic` network one tenant's instance could
send a REQUEST or RELEASE naming another tenant's MAC and move or drop that tenant's
lease. The Ethernet source cannot be forged (the VF's spoofchk, in hardware or in the
simulator), so a rule in the server's namespace drops every DHCP packet arriving on the
served interface whose `chaddr` differs from the frame's source MAC.

nftables cannot compare two packet fields, so the rule looks up (source, chaddr) in a set
each packet first fills with (source, source): only a packet whose two MACs are equal
finds its pair. Packets from the server's own namespace (release.py's DHCPRELEASE on a
gone client's behalf) come in over `lo` and are not checked.
"""

from __future__ import annotations

import subprocess

from ..drivers.base import DriverError
from . import validate

TABLE = "ciao_dhcp_guard"
# Bit offsets for nft raw payload expressions: the Ethernet source is bytes 6..11 of the
# link-layer header; chaddr starts 28 bytes into the BOOTP message, after the 8-byte UDP
# header.
ETHER_SOURCE = "@ll,48,48"
CHADDR = "@th,288,48"


def _fingerprint(interface: str) -> str:
    """Names this version of the rules for `interface`: a table carrying it is current."""
    return f"ciao chaddr guard v1 on {interface}"


def ruleset(interface: str) -> str:
    """The guard's table for a server on `interface`, replacing any previous one."""
    ifname = validate.ifname(interface)
    pair = f"{ETHER_SOURCE} . {ETHER_SOURCE}"
    return "\n".join(
        [
            f"table inet {TABLE}",  # so that the delete below never fails
            f"delete table inet {TABLE}",
            f"table inet {TABLE} {{",
            f'  comment "{_fingerprint(ifname)}"',
            "  set own_mac {",
            f"    typeof {pair}; flags dynamic,timeout; timeout 1m;",
            "  }",
            "  chain input {",
            "    type filter hook input priority filter; policy accept;",
            f'    iifname "{ifname}" udp dport 67 add @own_mac {{ {pair} }}',
            f'    iifname "{ifname}" udp dport 67 {ETHER_SOURCE} . {CHADDR} != @own_mac '
            "counter drop",
            "  }",
            "}",
            "",
        ]
    )


# nft takes well over 10 s in a busy TCG guest (seen in the qemu lane: the server's set-up
# then failed and its clients got no lease).
NFT_TIMEOUT = 60.0


def _nft(netns: str, *args: str, script: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["ip", "netns", "exec", validate.netns(netns), "nft", *args],
            input=script,
            capture_output=True,
            text=True,
            check=False,
            timeout=NFT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise DriverError(f"chaddr guard in {netns}: nft took over {NFT_TIMEOUT:.0f} s") from None


def _listed(netns: str) -> str:
    """The guard's table as nft lists it; "" when it is not loaded."""
    done = _nft(netns, "list", "table", "inet", TABLE)
    return done.stdout if done.returncode == 0 else ""


def install(netns: str, interface: str) -> None:
    """Load the guard in the server's namespace unless the current one is there already
    (every full set-up of the server comes here; reloading would zero the counter of
    what it dropped). Atomic: one nft transaction. A failure is the server set-up's
    (DriverError): reported and retried, never skipped."""
    if f'comment "{_fingerprint(validate.ifname(interface))}"' in _listed(netns):
        return
    done = _nft(netns, "-f", "-", script=ruleset(interface))
    if done.returncode != 0:
        raise DriverError(f"chaddr guard in {netns}: nft failed: {done.stderr.strip()}")


def dropped(netns: str) -> int:
    """Packets the guard has dropped in this namespace (0 when it is not loaded)."""
    for line in _listed(netns).splitlines():
        if "counter packets" in line:
            return int(line.split("counter packets", 1)[1].split()[0])
    return 0
