"""Starting and stopping the "VM" guest of an instance namespace.

The guest itself is :mod:`simulator.guestd`, a standalone script that does its own DHCP
on every interface plugged into its namespace. :func:`start` launches it detached and
returns once it has a pid (its netlink watch starts a moment later and catches up with
a first dump of the links).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from .procs import stop_pidfile
from .state import pidfile_process

DAEMON = Path(__file__).with_name("guestd.py")

HOOK = """\
#!/bin/sh
# ciao simulator guest DHCP hook: address + default route only, never resolv.conf
# deconfig flushes IPv4 only: a SLAAC or DHCPv6 address may already be there
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface" scope global
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


# The DHCPv6 client's (simulator/dhcp6c.py) hook. DHCPv6 gives an address without a
# prefix length: it is a /128, the prefix is on-link by the router advertisement's PIO.
# nodad: the address is the controller's reservation, and DAD would keep it unusable for
# about 1.5 s (docs/simulator.md, "IPv6").
HOOK6 = """\
#!/bin/sh
# ciao simulator guest DHCPv6 hook: the leased address only, never resolv.conf
case "$1" in
  bound|renew)
    ip -6 addr replace "$ipv6/128" dev "$interface" nodad
    ;;
esac
exit 0
"""


def write_hook(path: Path, content: str = HOOK) -> Path:
    """Install a guests' DHCP hook. Guests share one file and may be running it: an
    in-place rewrite while one executes it fails with ETXTBSY ("Text file busy", seen
    with 50 concurrent launches), so it is written only when it differs, by rename."""
    if path.exists() and path.read_bytes() == content.encode():
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(content)
    tmp.chmod(0o755)
    os.replace(tmp, path)
    return path


# The guest image's own sysctl.conf, in force before any interface is plugged (a VF
# netdev moved into the namespace takes the namespace's `default` values). No DAD: after
# a migration the new copy of the guest comes up while the old one still holds the same
# MAC and so the same link-local and SLAAC addresses (make before break); DAD would fail
# them all and leave the guest without IPv6. A live-migrated real guest keeps its kernel
# state and never re-runs DAD either. Uniqueness is the controller's (unique MACs).
IMAGE_SYSCTLS = ("net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")


def image_sysctls(netns: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *IMAGE_SYSCTLS],
        check=True,
        capture_output=True,
    )


def start(
    netns: str,
    pidfile: Path,
    hook: Path,
    run_dir: Path,
    hostname: str,
    log: Path,
    hook6: Path | None = None,
) -> int:
    """Launch the guest detached (double fork); return its pid once it is ready."""
    pid = pidfile_process(pidfile)
    if pid is not None:
        return pid
    pidfile.unlink(missing_ok=True)
    image_sysctls(netns)
    with open(log, "ab") as out:
        launcher = subprocess.Popen(
            [  # in the namespace, with its /sys (ip netns exec mounts one)
                "ip",
                "netns",
                "exec",
                netns,
                sys.executable,
                "-IS",  # stdlib only until it loads pyroute2 from `--site`: 13 ms less a start
                str(DAEMON),
                "--site",
                sysconfig.get_paths()["purelib"],
                "--pidfile",
                str(pidfile),
                "--hook",
                str(hook),
                "--run-dir",
                str(run_dir),
                "--hostname",
                hostname,
                *(["--hook6", str(hook6)] if hook6 else []),
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
        time.sleep(0.005)
    raise RuntimeError(f"guest for {netns} did not start (see {log})")


def stop(pidfile: Path) -> None:
    stop_pidfile(pidfile)
