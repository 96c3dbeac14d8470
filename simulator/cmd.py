"""Running `ip`, `nft`, `tc`: argument lists only, never a shell string."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence

from .errors import CommandFailed


def run(args: Sequence[str], *, input: str | None = None, check: bool = True) -> str:
    """Run a command; return stdout; raise CommandFailed (with stderr) on failure."""
    proc = subprocess.run(list(args), input=input, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise CommandFailed(list(args), proc.returncode, proc.stderr)
    return proc.stdout


def in_netns(netns: str | None) -> list[str]:
    """Command prefix entering a network namespace (nothing for the root one).

    `nsenter --net` rather than `ip -n`/`ip netns exec`: those also unshare the
    mount namespace and remount /sys, which costs more with every namespace
    (each is a mount) -- ~6 ms per call at 1000 namespaces against ~2 ms.
    """
    return ["nsenter", f"--net=/run/netns/{netns}"] if netns else []


def ip(netns: str | None, *args: str, check: bool = True) -> str:
    """`ip ARGS...` inside namespace ``netns``."""
    return run([*in_netns(netns), "ip", *args], check=check)


def ip_batch(netns: str | None, lines: Iterable[str], *, force: bool = False) -> None:
    """One `ip -batch -` for many link operations in one namespace (fast path).

    Names in our batches never contain spaces; each line is one `ip` command
    without the leading `ip`.
    """
    text = "\n".join(lines)
    if not text:
        return
    run([*in_netns(netns), "ip", *(["-force"] if force else []), "-batch", "-"], input=text + "\n")


def netns_exec(netns: str, *args: str, input: str | None = None, check: bool = True) -> str:
    return run([*in_netns(netns), *args], input=input, check=check)


def nft(netns: str, script: str) -> None:
    netns_exec(netns, "nft", "-f", "-", input=script)


def tc(netns: str | None, *args: str, check: bool = True) -> str:
    return run([*in_netns(netns), "tc", *args], check=check)


class Batch:
    """`ip -batch` lines grouped by phase and namespace, run phase by phase.

    A veth created from a host namespace lands its peer in the fabric namespace,
    so fabric bridges are created in an early phase and the peer is enslaved in a
    later one: ``batch.add(ns, line, phase=...)`` then ``batch.run()``.
    """

    def __init__(self) -> None:
        self._lines: dict[int, dict[str, list[str]]] = {}

    def add(self, netns: str, *lines: str, phase: int = 1) -> None:
        self._lines.setdefault(phase, {}).setdefault(netns, []).extend(lines)

    def run(self) -> None:
        for phase in sorted(self._lines):
            for netns, lines in self._lines[phase].items():
                ip_batch(netns, lines)
        self._lines.clear()
