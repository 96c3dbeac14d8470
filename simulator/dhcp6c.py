"""A small DHCPv6 client (RFC 8415, IA_NA only) for the simulated VM guests.

Run as a plain script inside the guest's namespace, like ``udhcpc``:
``python dhcp6c.py -i eth1 -s HOOK [-p PIDFILE] [-H hostname] [-q]``.

Why our own: Debian's busybox is built without ``udhcpc6`` and the other clients in the
archive (dhclient, dhcpcd) keep pid, lease and control-socket files under one shared
/run, which namespaces of one host would fight over. Standard library only, so that
starting it costs little more than the interpreter.

The client identifies itself with a DUID-LL built from the interface's MAC (RFC 8415
§11.4) and an IAID of the MAC's last four bytes: both follow the MAC, so after a
migration (a new VF, a new guest, the same MAC) the server sees the very same client.
dnsmasq matches its ``dhcp-host=<mac>,...,[<ipv6>]`` reservation by that MAC.

Like udhcpc, it configures nothing itself: it calls the hook with ``bound``, ``renew``
or ``leasefail`` and the environment ``interface``, ``ipv6``, ``lease``, ``dns``,
``domain``; the hook never touches /etc/resolv.conf. ``-q`` quits once bound.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

CLIENT_PORT, SERVER_PORT = 546, 547
ALL_SERVERS = "ff02::1:2"
SOLICIT, ADVERTISE, REQUEST, RENEW, REBIND, REPLY = 1, 2, 3, 5, 6, 7
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IAADDR, OPT_ORO = 1, 2, 3, 5, 6
OPT_ELAPSED, OPT_STATUS, OPT_RAPID_COMMIT, OPT_DNS, OPT_DOMAINS, OPT_FQDN = 8, 13, 14, 23, 24, 39
STATUS_SUCCESS = 0
SIOCGIFHWADDR = 0x8927
# Retransmission (RFC 8415 §7.6) with a short cap: after a migration the first answers
# may reach the old copy of the guest (same MAC) until the switches relearn; a guest on a
# SLAAC-only network keeps soliciting, a few bytes every 8 s.
INITIAL_RT, MAX_RT = 1.0, 8.0
REQUEST_TRIES = 4
NO_SOURCE_RETRY = 0.05


def mac_of(ifname: str) -> bytes:
    """The interface's MAC by ioctl: /sys may be another namespace's mount."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        data = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR, struct.pack("256s", ifname.encode()[:15]))
    return data[18:24]


def duid_ll(mac: bytes) -> bytes:
    """DUID-LL: type 3, hardware type 1 (Ethernet), the MAC."""
    return struct.pack("!HH", 3, 1) + mac


def option(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def options(data: bytes) -> list[tuple[int, bytes]]:
    found, at = [], 0
    while at + 4 <= len(data):
        code, length = struct.unpack_from("!HH", data, at)
        found.append((code, data[at + 4 : at + 4 + length]))
        at += 4 + length
    return found


def first(opts: list[tuple[int, bytes]], code: int) -> bytes | None:
    return next((value for c, value in opts if c == code), None)


def fqdn(name: str) -> bytes:
    """Client FQDN option body: flags 0 (the server updates DNS), one label."""
    label = name.encode()[:63]
    return b"\x00" + bytes([len(label)]) + label


def domains(data: bytes) -> list[str]:
    """A domain-search list in DNS wire format (no compression in DHCPv6)."""
    names, labels, at = [], [], 0
    while at < len(data):
        length = data[at]
        at += 1
        if length == 0:
            names.append(".".join(labels))
            labels = []
            continue
        labels.append(data[at : at + length].decode(errors="replace"))
        at += length
    return names


class Lease:
    def __init__(self, server_id: bytes, address: str, valid: int, t1: int, t2: int) -> None:
        self.server_id, self.address, self.valid = server_id, address, valid
        self.t1, self.t2 = t1, t2
        self.dns: list[str] = []
        self.domains: list[str] = []


class Client:
    def __init__(self, ifname: str, hostname: str | None) -> None:
        self.ifname = ifname
        self.mac = mac_of(ifname)
        self.duid = duid_ll(self.mac)
        self.iaid = self.mac[2:6]
        self.hostname = hostname
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        self.sock.bind(("::", CLIENT_PORT))
        self.scope = socket.if_nametoindex(ifname)

    def message(self, kind: int, xid: bytes, started: float, extra: bytes = b"") -> bytes:
        elapsed = min(int((time.monotonic() - started) * 100), 0xFFFF)
        body = option(OPT_CLIENTID, self.duid) + option(OPT_ELAPSED, struct.pack("!H", elapsed))
        body += option(OPT_ORO, struct.pack("!HH", OPT_DNS, OPT_DOMAINS))
        if self.hostname:
            body += option(OPT_FQDN, fqdn(self.hostname))
        return bytes([kind]) + xid + body + extra

    def ia_na(self, address: str | None = None) -> bytes:
        inner = b""
        if address:
            inner = option(OPT_IAADDR, socket.inet_pton(socket.AF_INET6, address) + bytes(8))
        return option(OPT_IA_NA, self.iaid + bytes(8) + inner)

    def exchange(self, kind: int, extra: bytes, want: tuple[int, ...], budget: float | None):
        """Send `kind` until a message of a `want` type with our xid answers, backing off
        (§15); None once `budget` seconds have passed (None: keep trying)."""
        xid = os.urandom(3)
        started = time.monotonic()
        rt = INITIAL_RT * (1 + random.uniform(-0.1, 0.1))
        while budget is None or time.monotonic() - started < budget:
            try:
                self.sock.sendto(
                    self.message(kind, xid, started, extra),
                    (ALL_SERVERS, SERVER_PORT, 0, self.scope),
                )
            except OSError:
                # No usable link-local source yet: it is tentative while the kernel's
                # DAD runs (about a second after link up). Try again soon, without
                # backing off: nothing was sent.
                time.sleep(NO_SOURCE_RETRY)
                continue
            deadline = time.monotonic() + rt
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([self.sock], [], [], left)
                if not ready:
                    break
                data, _ = self.sock.recvfrom(4096)
                if len(data) < 4 or data[0] not in want or data[1:4] != xid:
                    continue
                opts = options(data[4:])
                if first(opts, OPT_CLIENTID) != self.duid:
                    continue
                return data[0], opts
            rt = min(2 * rt, MAX_RT) * (1 + random.uniform(-0.1, 0.1))
        return None

    def lease_from(self, opts: list[tuple[int, bytes]]) -> Lease | None:
        server_id, ia = first(opts, OPT_SERVERID), first(opts, OPT_IA_NA)
        status = first(opts, OPT_STATUS)
        if server_id is None or ia is None or len(ia) < 12 or ia[:4] != self.iaid:
            return None
        if status and struct.unpack("!H", status[:2])[0] != STATUS_SUCCESS:
            return None
        t1, t2 = struct.unpack("!II", ia[4:12])
        inner = options(ia[12:])
        ia_status = first(inner, OPT_STATUS)
        if ia_status and struct.unpack("!H", ia_status[:2])[0] != STATUS_SUCCESS:
            return None
        addr = first(inner, OPT_IAADDR)
        if addr is None or len(addr) < 24:
            return None
        _, valid = struct.unpack("!II", addr[16:24])
        lease = Lease(server_id, socket.inet_ntop(socket.AF_INET6, addr[:16]), valid, t1, t2)
        dns = first(opts, OPT_DNS) or b""
        lease.dns = [
            socket.inet_ntop(socket.AF_INET6, dns[i : i + 16]) for i in range(0, len(dns) - 15, 16)
        ]
        lease.domains = domains(first(opts, OPT_DOMAINS) or b"")
        return lease

    def obtain(self, budget: float | None) -> Lease | None:
        """Solicit (asking for rapid commit), then Request if the server advertised."""
        solicit = self.ia_na() + option(OPT_RAPID_COMMIT, b"")
        answer = self.exchange(SOLICIT, solicit, (ADVERTISE, REPLY), budget)
        if answer is None:
            return None
        kind, opts = answer
        if kind == REPLY:
            return self.lease_from(opts)
        offered = self.lease_from(opts)
        if offered is None:
            return None
        request = option(OPT_SERVERID, offered.server_id) + self.ia_na(offered.address)
        answer = self.exchange(REQUEST, request, (REPLY,), INITIAL_RT * (2**REQUEST_TRIES))
        return self.lease_from(answer[1]) if answer else None

    def renew(self, lease: Lease, kind: int, budget: float) -> Lease | None:
        extra = self.ia_na(lease.address)
        if kind == RENEW:
            extra = option(OPT_SERVERID, lease.server_id) + extra
        answer = self.exchange(kind, extra, (REPLY,), budget)
        return self.lease_from(answer[1]) if answer else None


def run_hook(hook: str, event: str, ifname: str, lease: Lease | None) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "interface": ifname}
    if lease is not None:
        env |= {
            "ipv6": lease.address,
            "lease": str(lease.valid),
            "dns": " ".join(lease.dns),
            "domain": " ".join(lease.domains),
        }
    subprocess.run([hook, event], env=env, check=False, stdin=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dhcp6c.py")
    parser.add_argument("-i", "--interface", required=True)
    parser.add_argument("-s", "--script", required=True)
    parser.add_argument("-p", "--pidfile")
    parser.add_argument("-H", "--hostname")
    parser.add_argument("-q", "--quit", action="store_true", help="exit once bound")
    parser.add_argument("-t", "--timeout", type=float, help="give up after this many seconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.pidfile:
        Path(args.pidfile).write_text(f"{os.getpid()}\n")
    try:
        client = Client(args.interface, args.hostname)
        while True:
            lease = client.obtain(args.timeout)
            if lease is None:
                run_hook(args.script, "leasefail", args.interface, None)
                if args.quit or args.timeout is not None:
                    return 1
                continue
            run_hook(args.script, "bound", args.interface, lease)
            if args.quit:
                return 0
            while lease is not None:  # renew at T1, rebind at T2, else start over
                t1 = lease.t1 or lease.valid // 2
                t2 = lease.t2 or lease.valid * 4 // 5
                time.sleep(max(t1, 1))
                renewed = client.renew(lease, RENEW, max(t2 - t1, 1))
                if renewed is None:
                    renewed = client.renew(lease, REBIND, max(lease.valid - t2, 1))
                if renewed is not None:
                    run_hook(args.script, "renew", args.interface, renewed)
                lease = renewed
    finally:
        if args.pidfile:
            Path(args.pidfile).unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
