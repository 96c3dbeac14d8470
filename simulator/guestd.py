"""The simulated VM guest daemon, run as a plain script (``python guestd.py ...``).

Deliberately standalone (standard library; pyroute2 only for the RA flags, below):
launching it must cost little more than the interpreter's start, since a VM launch waits
for its pid. Started by ``ip netns exec``, so /sys/class/net is its namespace's. It wakes
on netlink link events (a plain NETLINK_ROUTE socket, read only as a wakeup) and reads
its links from /sys; every interface that appears (a VF plugged in) is brought up and
gets its own ``udhcpc`` with the hook script it is given (address and default route
only, never /etc/resolv.conf). The RA's M flag (DHCPv6) is read through pyroute2, which
takes 160-260 ms of CPU to import: it loads in a thread, so DHCPv4 does not wait for it
(waiting made a VM's lease come some 250 ms after its VF was plugged). Nothing is
reported to the host side: like a real VM, its IP is only visible on the wire and in
the DHCP server's lease file. :mod:`simulator.guest` starts and stops it.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

CLIENT_STOP_SECONDS = 1.0
# A client that exited is restarted at the next reconcile; link events wake it at once.
CLIENT_CHECK_SECONDS = 5.0


DHCP6C = Path(__file__).with_name("dhcp6c.py")
# The guest's own IPv6 autoconfiguration, as a distribution's defaults give it: accept
# router advertisements, form SLAAC (EUI-64) addresses from prefixes with the A flag.
IPV6_SYSCTLS = {"disable_ipv6": "0", "accept_ra": "1", "autoconf": "1", "addr_gen_mode": "0"}


def ipv6_autoconf(ifname: str) -> None:
    """Set in this process's namespace: /proc/sys/net is resolved per network namespace
    of the opener. SLAAC needs it before the first RA; a namespace's defaults already are
    these, so setting them on an interface that is up loses nothing."""
    for key, value in IPV6_SYSCTLS.items():
        path = Path(f"/proc/sys/net/ipv6/conf/{ifname}/{key}")
        try:
            if path.read_text().strip() != value:
                path.write_text(value)
        except OSError:
            pass  # the interface went away meanwhile: the next reconcile forgets it


class Guest:
    def __init__(self, hook: str, run_dir: Path, hostname: str, hook6: str | None = None) -> None:
        self.hook = hook
        self.hook6 = hook6
        self.run_dir = run_dir
        self.hostname = hostname
        self.clients: dict[str, subprocess.Popen] = {}
        self.clients6: dict[str, subprocess.Popen] = {}

    def udhcpc_pidfile(self, ifname: str) -> Path:
        return self.run_dir / f"udhcpc-{self.hostname}-{ifname}.pid"

    def dhcp6c_pidfile(self, ifname: str) -> Path:
        return self.run_dir / f"dhcp6c-{self.hostname}-{ifname}.pid"

    def reconcile(
        self, links: dict[str, bool], managed: set[str] | frozenset = frozenset()
    ) -> None:
        """``links``: ifname -> is up; ``managed``: interfaces whose last router
        advertisement had the M flag (DHCPv6). Start clients, stop stale ones."""
        for ifname, proc in list(self.clients.items()):
            if ifname not in links or proc.poll() is not None:
                self._stop_client(ifname)
        for ifname, proc in list(self.clients6.items()):
            if ifname not in links or proc.poll() is not None:
                self._stop_client(ifname, self.clients6, self.dhcp6c_pidfile(ifname))
        for ifname, up in links.items():
            if ifname not in self.clients:
                ipv6_autoconf(ifname)
            if not up:
                subprocess.run(["ip", "link", "set", "dev", ifname, "up"], check=False)
            if self.hook6 and ifname in managed and ifname not in self.clients6:
                # DHCPv6 once a router says addresses are managed (the M flag), as
                # NetworkManager or systemd-networkd do: the RA has put the prefix
                # on-link by then, which the /128 DHCPv6 address relies on.
                self.clients6[ifname] = subprocess.Popen(
                    [
                        sys.executable,
                        "-IS",  # dhcp6c is stdlib only: no site
                        str(DHCP6C),
                        "-i",
                        ifname,
                        "-s",
                        self.hook6,
                        "-p",
                        str(self.dhcp6c_pidfile(ifname)),
                        "-H",
                        self.hostname,
                    ],
                    stdin=subprocess.DEVNULL,
                )
            if ifname not in self.clients:
                self.clients[ifname] = subprocess.Popen(
                    [
                        "udhcpc",
                        "-f",
                        "-i",
                        ifname,
                        "-s",
                        self.hook,
                        "-p",
                        str(self.udhcpc_pidfile(ifname)),
                        "-x",
                        f"hostname:{self.hostname}",
                        "-t",
                        "5",
                        "-T",
                        "1",
                        "-A",
                        "2",
                    ],
                    stdin=subprocess.DEVNULL,
                )

    def _stop_client(
        self, ifname: str, clients: dict | None = None, pidfile: Path | None = None
    ) -> None:
        proc = (self.clients if clients is None else clients).pop(ifname)
        proc.terminate()
        try:
            proc.wait(CLIENT_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        (pidfile or self.udhcpc_pidfile(ifname)).unlink(missing_ok=True)

    def stop(self) -> None:
        for ifname in list(self.clients):
            self._stop_client(ifname)
        for ifname in list(self.clients6):
            self._stop_client(ifname, self.clients6, self.dhcp6c_pidfile(ifname))


# The kernel's per-interface IPv6 flags (IFLA_INET6_FLAGS): set from the last RA.
IF_RA_MANAGED = 0x40
# rtnetlink multicast groups (linux/rtnetlink.h): link changes, and the IPv6 ifinfo
# notification the kernel sends when an RA changed an interface's flags.
RTMGRP_LINK = 0x1
RTMGRP_IPV6_IFINFO = 0x800
SYS_CLASS_NET = Path("/sys/class/net")
IFF_UP = 0x1


def _links() -> dict[str, bool]:
    """ifname -> is up, from this namespace's /sys (the links that vanish meanwhile are
    left out: the next reconcile forgets them)."""
    links = {}
    for entry in SYS_CLASS_NET.iterdir():
        if entry.name == "lo":
            continue
        try:
            links[entry.name] = bool(int((entry / "flags").read_text(), 16) & IFF_UP)
        except (OSError, ValueError):
            continue
    return links


class RaFlags:
    """The interfaces whose last router advertisement had the M flag, through pyroute2
    once it has loaded in its thread (empty until then; `wake` is written when it has)."""

    def __init__(self, wake: int, site: str | None) -> None:
        self._ipr = None
        self._wake = wake
        self._site = site
        threading.Thread(target=self._load, name="ra-flags", daemon=True).start()

    def _load(self) -> None:
        if self._site and self._site not in sys.path:
            sys.path.append(self._site)  # run with -IS: the start imports the stdlib only
        from pyroute2 import IPRoute

        self._ipr = IPRoute()
        os.write(self._wake, b"!")

    def managed(self) -> set[str]:
        if self._ipr is None:
            return set()
        managed = set()
        for msg in self._ipr.get_links():
            spec = msg.get_attr("IFLA_AF_SPEC")
            inet6 = spec.get_attr("AF_INET6") if spec else None
            if inet6 is not None and (inet6.get_attr("IFLA_INET6_FLAGS") or 0) & IF_RA_MANAGED:
                managed.add(msg.get_attr("IFLA_IFNAME"))
        return managed


def _link_events() -> socket.socket:
    """Readable when a link or an RA's flags change; what changed is read from /sys. Not
    neighbour, address or route events: 70 idle guests woken by those (and a 0.5 s poll)
    took a fifth of a 2-core machine."""
    events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    events.bind((0, RTMGRP_LINK | RTMGRP_IPV6_IFINFO))
    events.setblocking(False)
    return events


def _drain(events: socket.socket) -> None:
    try:
        while events.recv(65536):
            pass
    except BlockingIOError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guestd.py")
    parser.add_argument("--site", help="where pyroute2 is installed (run with python -IS)")
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--hook", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--hook6", help="the DHCPv6 client's hook; none: no DHCPv6")
    args = parser.parse_args(argv)

    if os.fork():  # launcher: return at once so the caller can reap it
        os._exit(0)
    # Ready as soon as it exists, like a hypervisor's "running" before the guest boots:
    # links plugged while it still starts are found by its first dump below.
    pidfile = Path(args.pidfile)
    pidfile.write_text(f"{os.getpid()}\n")
    stopping = False

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    # A signal makes this readable, so the wait below ends at once (select itself would
    # resume after the handler and sleep out its timeout).
    wake, woken = os.pipe()
    os.set_blocking(woken, False)
    signal.set_wakeup_fd(woken)
    # Subscribed before the first look at the links: nothing plugged in between is missed.
    events = _link_events()
    ra_flags = RaFlags(woken, args.site)
    guest = Guest(args.hook, Path(args.run_dir), args.hostname, args.hook6)
    try:
        while not stopping:
            guest.reconcile(_links(), ra_flags.managed())
            try:
                ready, _, _ = select.select([events, wake], [], [], CLIENT_CHECK_SECONDS)
                if wake in ready:
                    os.read(wake, 512)
                if events in ready:
                    _drain(events)
            except OSError:  # a burst of events overran the socket: reconcile reads the truth
                continue
    finally:
        guest.stop()
        pidfile.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
