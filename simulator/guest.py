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
import time
from pathlib import Path

from .procs import stop_pidfile
from .state import pidfile_process

DAEMON = Path(__file__).with_name("guestd.py")

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
    """Install the guests' DHCP hook. Guests share one file and may be running it: an
    in-place rewrite while one executes it fails with ETXTBSY ("Text file busy", seen
    with 50 concurrent launches), so it is written only when it differs, by rename."""
    if path.exists() and path.read_bytes() == HOOK.encode():
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(HOOK)
    tmp.chmod(0o755)
    os.replace(tmp, path)
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
                str(DAEMON),
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
        time.sleep(0.005)
    raise RuntimeError(f"guest for {netns} did not start (see {log})")


def stop(pidfile: Path) -> None:
    stop_pidfile(pidfile)
