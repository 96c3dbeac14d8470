"""Remove everything a simulator left behind, even after a crash.

``clean(name)`` removes what carries that simulator's prefix (``ciao-<name>-``
namespaces, processes from ``<base>/<name>/pids/*.pid`` and inside those
namespaces, the state dir).  ``clean()`` removes every ``ciao*`` namespace and
root-namespace link, every process in those namespaces, every simulator's pid
files and state dirs under the base dir.  Nothing else: processes are found by pid
file (checked against /proc/<pid>/cmdline) or by namespace, never by name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from . import names, netns
from .cmd import ip
from .procs import stop_pidfile, terminate


def clean(
    name: str | None = None,
    base_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, list[str]]:
    log = log or (lambda _msg: None)
    base = names.base_dir(base_dir)
    if name is not None:
        names.check_sim_name(name)
        dirs = [base / name]
        prefix = names.ns_prefix(name)
    else:
        dirs = [d for d in base.iterdir() if d.is_dir()] if base.is_dir() else []
        prefix = names.PREFIX
    removed: dict[str, list[str]] = {"pidfiles": [], "netns": [], "links": [], "dirs": []}

    # 1. processes we daemonized (guests, their udhcpc, dnsmasq)
    for d in dirs:
        for pidfile in sorted((d / "pids").glob("*.pid")):
            stop_pidfile(pidfile)
            removed["pidfiles"].append(str(pidfile))
    # 2. namespaces, instances first (they hold VFs), then whatever lives inside
    spaces = netns.list_prefixed(prefix)
    spaces.sort(key=lambda n: (0 if "-i-" in n else 1, n))
    inside = netns.pids_by_ns(spaces)
    terminate([pid for pids in inside.values() for pid in pids])
    for ns in spaces:
        netns.delete(ns)
        removed["netns"].append(ns)
        log(f"deleted netns {ns}")
    # 3. links in the root namespace (we create none; a crash of someone else's might)
    if name is None:
        for link in netns_root_links(names.PREFIX):
            ip(None, "link", "del", "dev", link, check=False)
            removed["links"].append(link)
            log(f"deleted link {link}")
    # 4. state dirs
    for d in dirs:
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)
            removed["dirs"].append(str(d))
            log(f"removed {d}")
    return removed


def netns_root_links(prefix: str) -> list[str]:
    out = ip(None, "-o", "link", "show", check=False)
    result = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            link = parts[1].strip().split("@", 1)[0]
            if link.startswith(prefix):
                result.append(link)
    return result
