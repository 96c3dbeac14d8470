"""Where a phase's CPU went: the machine's busy time (/proc/stat) and each process group's
share (/proc/<pid>/stat, a process' own time and that of the children it reaped, so the
commands an agent runs, the PostgreSQL backends and dnsmasq's lease hooks all count).

On 2 vCPUs the burst and its floor are both CPU-bound: throughput is cores / (CPU
seconds per launch), so the ratio of the two per-launch figures explains the burst's.
"""

from __future__ import annotations

import os
import time
from collections import Counter

TICK = os.sysconf("SC_CLK_TCK")


def _group(argv: list[str]) -> str:
    """The product's process groups (by command line); the rest is `other`."""
    if not argv:  # no command line: a kernel thread (netns, veth and bridge work)
        return "kernel threads"
    line = " ".join(argv)
    if "daphne" in line:
        return "api (daphne)"
    if "celery" in line and "ciaoweb.celery" in line:
        return "controller workers"
    if "ciaoweb.agent" in line or "ciao-agent" in line:
        return "agents"
    if "dnsmasq" in line:
        return "dnsmasq"
    if line.startswith("postgres") or "/postgres" in line:
        return "postgresql"
    if "redis-server" in line:
        return "redis"
    if "-m bench" in line or "bench." in line:
        return "bench client"
    return "other"


def _processes() -> dict[int, tuple[str, float, float]]:
    """pid -> (group, own CPU s, reaped children's CPU s)."""
    seen = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        own = (int(fields[11]) + int(fields[12])) / TICK
        children = (int(fields[13]) + int(fields[14])) / TICK
        seen[int(entry)] = (_group(argv), own, children)
    return seen


def _busy() -> float:
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, f.readline().split()[1:9]
        )
    return (user + nice + system + irq + softirq + steal) / TICK


class CpuUse:
    """Started at construction; `result(launches)` says where the CPU went since."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy = _busy()
        self.before = _processes()

    def result(self, launches: int) -> dict:
        wall = time.monotonic() - self.started
        busy = _busy() - self.busy
        groups: Counter = Counter()
        for pid, (group, own, children) in _processes().items():
            own0, children0 = self.before.get(pid, (group, 0.0, 0.0))[1:]
            groups[group] += own - own0
            groups[f"{group}: what it ran"] += children - children0
        per_launch = {k: 1000 * v / launches for k, v in groups.most_common() if v >= 0.05}
        return {
            "wall_s": wall,
            "machine_busy_s": busy,
            "cores_busy": busy / wall if wall else None,
            "busy_ms_per_launch": 1000 * busy / launches,
            "ms_per_launch_by_group": per_launch,
        }
