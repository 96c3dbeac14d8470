"""The "VM" guest: a daemon inside an instance namespace that does its own DHCP.

It watches netlink link events (pyroute2) in its namespace; every interface that
appears (a VF plugged in) is brought up and gets its own ``udhcpc`` with OUR hook
script (which sets the address and never touches /etc/resolv.conf).  Nothing is
reported to the host side: like a real VM, its IP is only visible on the wire
(and in the DHCP server's lease file).

Run as ``python -m simulator.guestd --netns NS --pidfile P --hook H --run-dir D``;
:func:`start` launches it detached and waits until it listens.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from .procs import stop_pidfile, terminate
from .state import pidfile_process

HOOK = """\
#!/bin/sh
# ciao simulator guest DHCP hook: address + default route only, never resolv.conf
case "$1" in
  deconfig)
    ip addr flush dev "$interface" scope global
    ip link set dev "$interface" up
    ;;
  bound|renew)
    ip addr replace "$ip/${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then
      ip route replace default via "${router%% *}" dev "$interface" || true
    fi
    ;;
esac
exit 0
"""


def write_hook(path: Path) -> Path:
    path.write_text(HOOK)
    path.chmod(0o755)
    return path


def start(netns: str, pidfile: Path, hook: Path, run_dir: Path, hostname: str, log: Path) -> int:
    """Launch the guest detached (double fork); return its pid once it is ready."""
    pid = pidfile_process(pidfile)
    if pid is not None:
        return pid
    pidfile.unlink(missing_ok=True)
    with open(log, "ab") as out:
        launcher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulator.guestd",
                "--netns",
                netns,
                "--pidfile",
                str(pidfile),
                "--hook",
                str(hook),
                "--run-dir",
                str(run_dir),
                "--hostname",
                hostname,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        launcher.wait()  # the launcher exits as soon as the daemon has forked
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = pidfile_process(pidfile)
        if pid is not None:
            return pid
        time.sleep(0.02)
    raise RuntimeError(f"guest for {netns} did not start (see {log})")


def stop(pidfile: Path) -> None:
    stop_pidfile(pidfile)


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
                terminate([proc.pid], 1.0)
                proc.wait()
                self.udhcpc_pidfile(ifname).unlink(missing_ok=True)
                del self.clients[ifname]
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

    def stop(self) -> None:
        terminate([p.pid for p in self.clients.values()], 2.0)
        for ifname, proc in self.clients.items():
            proc.wait()
            self.udhcpc_pidfile(ifname).unlink(missing_ok=True)
        self.clients.clear()


def _links(ipr) -> dict[str, bool]:
    result = {}
    for msg in ipr.get_links():
        name = msg.get("ifname")
        if name and name != "lo":
            result[name] = bool(msg["flags"] & 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.guestd")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--hook", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--hostname", required=True)
    args = parser.parse_args(argv)

    if os.fork():  # launcher: return at once so the caller can reap it
        os._exit(0)
    from pyroute2 import IPRoute
    from pyroute2.netns import setns

    setns(args.netns, flags=0)
    stopping = False

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    events = IPRoute()
    events.bind()
    dump = IPRoute()
    guest = Guest(args.hook, Path(args.run_dir), args.hostname)
    pidfile = Path(args.pidfile)
    pidfile.write_text(f"{os.getpid()}\n")
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
