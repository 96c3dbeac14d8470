"""Helpers of the end-to-end acceptance tests (issue 5).

Every test drives the shared session `cluster` (tests/conftest.py) through the public
REST API only, and observes real packets with `ip netns exec`. Tests stay independent:
each builds its own tenants and networks under a unique suffix through the `world`
fixture, which deletes what the test created (instances first, then networks, tenants)
and checks nothing of it is left behind.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from tests.worlds import API, SETTLE, LiveWorld, Tenant, ok, results

__all__ = ["API", "SETTLE", "Tenant", "World", "ok", "results"]  # what tests import from here

REPO = Path(__file__).resolve().parents[2]
FIGURES = Path(os.environ.get("CIAO_VAR_DIR", REPO / "var")) / "e2e-figures.json"
_figures_lock = threading.Lock()


def record_figures(section: str, figures: dict) -> None:
    """Merge figures into var/e2e-figures.json (one section per test) and print them."""
    with _figures_lock:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(FIGURES.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        data[section] = figures
        tmp = FIGURES.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(FIGURES)
    print(f"\n[e2e figures] {section}: {json.dumps(figures, sort_keys=True)}")


# --- packets ---------------------------------------------------------------------------


def netns_exec(netns: str, *argv: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout
    )


def pings(netns: str, ip: str, ifname: str | None = None, count: int = 1, wait: int = 1) -> bool:
    argv = ["ping", "-n", "-q", "-c", str(count), "-W", str(wait)]
    if ifname:
        argv += ["-I", ifname]
    return netns_exec(netns, *argv, ip, timeout=count * wait + 5).returncode == 0


def wait_ping(
    cluster, netns: str, ip: str, ifname: str | None = None, timeout: float = SETTLE
) -> None:
    cluster.wait_for(
        lambda: pings(netns, ip, ifname),
        timeout=timeout,
        interval=0.2,
        what=f"{ip} answering ping from {netns}",
    )


def never_pings(netns: str, ip: str, ifname: str | None = None, seconds: int = 2) -> bool:
    """No reply at all to `seconds` pings (one every 0.2 s, 1 s wait each)."""
    argv = ["ping", "-n", "-q", "-i", "0.2", "-c", str(seconds * 5), "-W", "1"]
    if ifname:
        argv += ["-I", ifname]
    done = netns_exec(netns, *argv, ip, timeout=seconds + 10)
    match = re.search(r"(\d+) received", done.stdout)
    return match is not None and int(match.group(1)) == 0


class PingRecorder:
    """`ping -i 0.01 -D` inside a peer's namespace; reply times give the longest gap."""

    def __init__(self, netns: str, ip: str, ifname: str | None = None) -> None:
        argv = ["ip", "netns", "exec", netns, "ping", "-n", "-D", "-i", "0.01", "-W", "1"]
        if ifname:
            argv += ["-I", ifname]
        self.process = subprocess.Popen(
            argv + [ip], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.replies: list[float] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            match = re.match(r"\[(\d+\.\d+)\] \d+ bytes from", line)
            if match:
                self.replies.append(float(match.group(1)))

    def replies_after(self, moment: float) -> int:
        return sum(1 for t in list(self.replies) if t > moment)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)

    def longest_gap(self, start: float, end: float | None = None) -> float:
        """Longest interval (s) without replies between `start` (epoch) and the last
        reply (or `end`): the outage a peer saw."""
        times = [t for t in self.replies if t >= start and (end is None or t <= end)]
        if not times:
            return float("inf")
        edges = [start] + times
        return max(b - a for a, b in zip(edges, edges[1:], strict=False)) if len(edges) > 1 else 0.0


# --- the world a test builds ------------------------------------------------------------

# One implementation for every layer on a live cluster (tests/worlds.py); the names stay.
World = LiveWorld


@pytest.fixture
def world(cluster):
    made = LiveWorld(cluster)
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def module_world(cluster):
    """For a module whose tests share a set-up (built once, removed after its last test)."""
    made = LiveWorld(cluster)
    yield made
    made.cleanup()


# --- reading the cluster -----------------------------------------------------------------


def sriov_attachment(instance: dict, network: dict) -> dict:
    return next(a for a in instance["attachments"] if a["network"] == network["id"])


def dhcp_server_ip(network: dict) -> str:
    """Managed networks' DHCP/DNS server: the last usable address (docs/api.md)."""
    return str(ipaddress.IPv4Network(network["cidr"]).broadcast_address - 1)


def host_ids(cluster) -> dict[str, str]:
    """host name -> id."""
    return {h["name"]: h["id"] for h in results(cluster.api, "hosts")}


def vf_location(cluster, vf_id: str) -> tuple[str, str, int]:
    """(host name, PF name, index) of a VF, from the admin API."""
    vf = ok(cluster.api.get(f"{API}/virtual-functions/{vf_id}/"))
    pf = ok(cluster.api.get(f"{API}/physical-functions/{vf['pf']}/"))
    names = {v: k for k, v in host_ids(cluster).items()}
    return names.get(pf["host"], pf["host"]), pf["name"], vf["index"]


def wait_guest_address(cluster, netns: str, ifname: str, ip: str, timeout: float = SETTLE) -> None:
    """A VM's guest configures itself by DHCP: wait until its interface holds `ip`."""

    def configured() -> bool:
        done = netns_exec(netns, "ip", "-4", "-o", "addr", "show", "dev", ifname)
        return f"inet {ip}/" in done.stdout

    cluster.wait_for(
        configured,
        timeout=timeout,
        interval=0.2,
        what=f"guest in {netns} configuring {ip} on {ifname}",
    )


def sim_vfs(cluster) -> dict[tuple[str, str, int], dict]:
    """Every simulated VF's config now: (host, pf, index) -> {mac, vlan, netns}."""
    vfs = {}
    for host in cluster.sim.hosts():
        for pf in cluster.sim.pfs(host):
            for index in range(cluster.sim.numvfs(host, pf)):
                state = cluster.sim.get_vf(host, pf, index)
                vfs[(host, pf, index)] = {
                    "mac": state.mac,
                    "vlan": state.vlan,
                    "netns": state.netns,
                }
    return vfs
