"""Network namespaces: create, delete, list by prefix, find the processes inside."""

from __future__ import annotations

import os
import time
from pathlib import Path

from .cmd import ip, run
from .errors import CommandFailed

NETNS_DIR = Path("/run/netns")
LO_UP_TRIES = 50  # 20 ms apart


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def create(name: str, *, lo_up: bool = True) -> None:
    """Create a namespace (idempotent) with its loopback up."""
    if not exists(name):
        try:
            run(["ip", "netns", "add", name])
        except CommandFailed:
            if not exists(name):  # lost a race with a concurrent creator: fine
                raise
    if lo_up:
        # A concurrent `ip netns add` makes /run/netns/<name> before it mounts the
        # namespace there: entering it in between fails for a moment.
        for attempt in range(LO_UP_TRIES):
            try:
                ip(name, "link", "set", "lo", "up")
                return
            except CommandFailed:
                if attempt == LO_UP_TRIES - 1:
                    raise
                time.sleep(0.02)


def delete(name: str) -> None:
    """Delete a namespace; idempotent. Links inside it are destroyed with it."""
    if exists(name):
        run(["ip", "netns", "delete", name], check=False)


def list_prefixed(prefix: str) -> list[str]:
    """All namespaces whose name starts with ``prefix`` (from /run/netns)."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def pids(name: str) -> list[int]:
    """Processes whose network namespace is ``name`` (like `ip netns pids`)."""
    try:
        target = os.stat(NETNS_DIR / name)
    except FileNotFoundError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            found.append(int(entry))
    return found


def links(name: str) -> list[str]:
    """Interface names inside a namespace (empty if it does not exist)."""
    if not exists(name):
        return []
    out = ip(name, "-o", "link", "show", check=False)
    result = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            result.append(parts[1].strip().split("@", 1)[0])
    return result


def link_exists(netns: str, ifname: str) -> bool:
    if not exists(netns):
        return False
    return bool(ip(netns, "-o", "link", "show", "dev", ifname, check=False).strip())


def pids_by_ns(names: list[str]) -> dict[str, list[int]]:
    """One /proc scan for many namespaces: name -> pids inside it."""
    wanted = {}
    for name in names:
        try:
            st = os.stat(NETNS_DIR / name)
        except FileNotFoundError:
            continue
        wanted[(st.st_dev, st.st_ino)] = name
    result: dict[str, list[int]] = {n: [] for n in wanted.values()}
    if not wanted:
        return result
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        name = wanted.get((st.st_dev, st.st_ino))
        if name is not None:
            result[name].append(int(entry))
    return result


def link_address(netns: str, ifname: str) -> str | None:
    """The MAC address of ifname in netns, None if there is no such link."""
    if not exists(netns):
        return None
    out = ip(netns, "-o", "link", "show", "dev", ifname, check=False)
    words = out.split()
    if "link/ether" in words:
        return words[words.index("link/ether") + 1].lower()
    return None
