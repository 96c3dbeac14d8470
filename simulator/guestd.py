"""The simulated VM guest daemon, run as a plain script (``python guestd.py ...``).

Deliberately standalone (standard library, pyroute2 imported after the fork): launching
it must cost little more than the interpreter's start, since a VM launch waits for its
pid. It watches netlink link events in its namespace; every interface that appears (a VF
plugged in) is brought up and gets its own ``udhcpc`` with the hook script it is given
(address and default route only, never /etc/resolv.conf). Nothing is reported to the
host side: like a real VM, its IP is only visible on the wire and in the DHCP server's
lease file. :mod:`simulator.guest` starts and stops it.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
from pathlib import Path

CLIENT_STOP_SECONDS = 1.0


class Guest:
    def __init__(self, hook: str, run_dir: Path, hostname: str) -> None:
        self.hook = hook
        self.run_dir = run_dir
        self.hostname = hostname
        self.clients: dict[str, subprocess.Popen] = {}

    def udhcpc_pidfile(self, ifname: str) -> Path:
        return self.run_dir / f"udhcpc-{self.hostname}-{ifname}.pid"

    def reconcile(self, links: dict[str, bool]) -> None:
        """``links``: ifname -> is up. Start a client per interface, stop stale ones."""
        for ifname, proc in list(self.clients.items()):
            if ifname not in links or proc.poll() is not None:
                self._stop_client(ifname)
        for ifname, up in links.items():
            if not up:
                subprocess.run(["ip", "link", "set", "dev", ifname, "up"], check=False)
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

    def _stop_client(self, ifname: str) -> None:
        proc = self.clients.pop(ifname)
        proc.terminate()
        try:
            proc.wait(CLIENT_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.udhcpc_pidfile(ifname).unlink(missing_ok=True)

    def stop(self) -> None:
        for ifname in list(self.clients):
            self._stop_client(ifname)


def _links(ipr) -> dict[str, bool]:
    result = {}
    for msg in ipr.get_links():
        name = msg.get("ifname")
        if name and name != "lo":
            result[name] = bool(msg["flags"] & 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guestd.py")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--hook", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--hostname", required=True)
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
    from pyroute2 import IPRoute
    from pyroute2.netns import setns

    setns(args.netns, flags=0)
    events = IPRoute()
    events.bind()
    dump = IPRoute()
    guest = Guest(args.hook, Path(args.run_dir), args.hostname)
    try:
        while not stopping:
            guest.reconcile(_links(dump))
            try:
                ready, _, _ = select.select([events], [], [], 0.5)
            except InterruptedError:
                continue
            if ready:
                events.get()  # drain; the next reconcile reads the truth
    finally:
        guest.stop()
        pidfile.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
