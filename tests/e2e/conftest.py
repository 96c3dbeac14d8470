"""Helpers of the end-to-end acceptance tests (issue 5).

Every test drives the shared session `cluster` (tests/conftest.py) through the public
REST API only, and observes real packets with `ip netns exec`. Tests stay independent:
each builds its own tenants and networks under a unique suffix through the `world`
fixture, which deletes what the test created (instances first, then networks, tenants)
and checks nothing of it is left behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURES = Path(os.environ.get("CIAO_VAR_DIR", REPO / "var")) / "e2e-figures.json"
API = "/api/v1"
# Generous bounds for things the issue puts no time on (agents, DHCP, guests booting).
SETTLE = 60.0
_figures_lock = threading.Lock()


def ok(reply: httpx.Response) -> dict:
    where = f"{reply.request.method} {reply.request.url}"
    assert reply.status_code < 400, f"{where}: {reply.status_code} {reply.text}"
    return reply.json() if reply.content else {}


def results(client: httpx.Client, path: str, **params) -> list[dict]:
    """Every row of a paginated list."""
    rows, url = [], f"{API}/{path}/"
    params = {"page_size": 1000, **params}
    while url:
        body = ok(client.get(url, params=params))
        rows += body["results"]
        url, params = body.get("next"), None
    return rows


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


@dataclass
class Tenant:
    id: str
    name: str
    username: str
    password: str
    token: str
    client: httpx.Client


@dataclass
class World:
    """What one test created; `cleanup` removes it (instances, networks, tenants)."""

    cluster: object
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    tenants: list[Tenant] = field(default_factory=list)
    networks: list[dict] = field(default_factory=list)
    instances: list[str] = field(default_factory=list)

    @property
    def api(self) -> httpx.Client:
        return self.cluster.api

    def name(self, label: str) -> str:
        return f"{label}-{self.suffix}"

    def tenant(self, label: str) -> Tenant:
        name = self.name(label)
        tenant = ok(self.api.post(f"{API}/tenants/", json={"name": name}))
        username, password = f"{name}-user", secrets.token_urlsafe(12)
        ok(
            self.api.post(
                f"{API}/tenants/{tenant['id']}/members/",
                json={"username": username, "password": password, "role": "member"},
            )
        )
        token = self.cluster.token_for(username, password)
        made = Tenant(tenant["id"], name, username, password, token, self.cluster.client(token))
        self.tenants.append(made)
        return made

    def network(
        self,
        tenant: Tenant,
        name: str,
        cidr: str,
        ipam: str = "controller",
        physnet: str = "physnet1",
        **extra,
    ) -> dict:
        """Created by the tenant's member, as a tenant would."""
        body = {
            "name": name,
            "kind": "sriov",
            "physnet": physnet,
            "cidr": cidr,
            "ipam": ipam,
            **extra,
        }
        network = ok(tenant.client.post(f"{API}/networks/", json=body))
        self.networks.append(network)
        return network

    def instance(
        self, tenant: Tenant, name: str, kind: str, networks: list[dict], host: str | None = None
    ) -> dict:
        """Created by the admin (who alone may pick the host) for the tenant."""
        body = {
            "name": name,
            "kind": kind,
            "tenant": tenant.id,
            "networks": [{"network": n["id"]} for n in networks],
        }
        if host:
            body["host"] = host
        instance = ok(self.api.post(f"{API}/instances/", json=body))
        self.instances.append(instance["id"])
        return instance

    def get(self, instance_id: str) -> dict:
        return ok(self.api.get(f"{API}/instances/{instance_id}/"))

    def running(self, instance_id: str, timeout: float = SETTLE) -> dict:
        body = self.cluster.wait_instance(instance_id, timeout=timeout)
        assert body["state"] == "running", f"{body['name']}: {body['state']} {body['error']}"
        return body

    def delete_instance(self, instance_id: str, timeout: float = SETTLE) -> None:
        reply = self.api.delete(f"{API}/instances/{instance_id}/")
        assert reply.status_code in (204, 404), reply.text
        self.cluster.wait_for(
            lambda: self.api.get(f"{API}/instances/{instance_id}/").status_code == 404,
            timeout=timeout,
            interval=0.1,
            what=f"instance {instance_id} gone",
        )
        with contextlib.suppress(ValueError):
            self.instances.remove(instance_id)

    def cleanup(self) -> None:
        errors = []
        for instance_id in list(self.instances):
            if self.api.get(f"{API}/instances/{instance_id}/").status_code == 404:
                continue
            self.api.delete(f"{API}/instances/{instance_id}/")
        for instance_id in list(self.instances):
            try:
                self.delete_instance(instance_id)
            except Exception as exc:  # noqa: BLE001 - keep cleaning, report at the end
                errors.append(f"instance {instance_id}: {exc}")
        for network in self.networks:
            reply = self.api.delete(f"{API}/networks/{network['id']}/")
            if reply.status_code not in (204, 404):
                errors.append(f"network {network['name']}: {reply.status_code} {reply.text}")
        for tenant in self.tenants:
            tenant.client.close()
            reply = self.api.delete(f"{API}/tenants/{tenant.id}/")
            if reply.status_code not in (204, 404):
                errors.append(f"tenant {tenant.name}: {reply.status_code} {reply.text}")
        assert not errors, "cleanup failed: " + "; ".join(errors)


@pytest.fixture
def world(cluster):
    made = World(cluster)
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def module_world(cluster):
    """For a module whose tests share a set-up (built once, removed after its last test)."""
    made = World(cluster)
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
