"""Send DHCPRELEASE to our own dnsmasq on a client's behalf (what dnsmasq's contrib
`dhcp_release` does, which Debian ships only in dnsmasq-utils).

When an instance is deleted its VF is reset, so its client can never release or renew:
without this the lease would hold the address for the whole lease time, and dnsmasq
refuses a reservation whose address is leased to another MAC ("not using configured
address ... because it is leased to ..."), so the controller could not hand the address
to the next instance. dnsmasq prunes the lease and runs our lease hook with `del`.

Run inside the server's namespace (stdlib only, like the lease hook):
    python release.py <interface> <mac>=<ip> [<mac>=<ip> ...]
The packet is sent to the interface's own address, bound to the interface, so dnsmasq
sees it arrive on the interface it serves.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import sys

SIOCGIFADDR = 0x8915
DHCP_COOKIE = b"\x63\x82\x53\x63"
DHCPRELEASE = 7


def interface_address(sock: socket.socket, ifname: str) -> bytes:
    request = struct.pack("256s", ifname.encode()[:15])
    return fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)[20:24]


def release_packet(mac: str, ip: str, server: bytes) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", ""))
    if len(chaddr) != 6:
        raise ValueError(f"bad MAC {mac!r}")
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1,
        1,
        6,
        0,  # BOOTREQUEST, Ethernet, hlen, hops
        int.from_bytes(os.urandom(4), "big"),
        0,
        0,  # xid, secs, flags
        socket.inet_aton(ip),
        b"\0" * 4,
        b"\0" * 4,
        b"\0" * 4,  # ciaddr yiaddr siaddr giaddr
        chaddr,
        b"",
        b"",
    )
    options = bytes([53, 1, DHCPRELEASE, 54, 4]) + server + b"\xff"
    return header + DHCP_COOKIE + options


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    ifname, pairs = argv[1], [arg.split("=", 1) for arg in argv[2:]]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        server = interface_address(sock, ifname)
        for mac, ip in pairs:
            sock.sendto(release_packet(mac, ip, server), (socket.inet_ntoa(server), 67))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
