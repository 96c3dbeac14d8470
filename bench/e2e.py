"""Benchmarks against a whole local cluster (daphne, controller worker, one agent per
simulated host, Redis DB 10, PostgreSQL scratch DB, dnsmasq): launch to lease for
containers and VMs, the live path DHCP ACK -> websocket, migration downtime, a burst."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from .cpu import CpuUse
from .util import fresh_database, summary
from .ws import EventListener

NETWORK_CIDR = "10.60.0.0/20"
BURST_PER_TENANT = 128


def topology(hosts: int = 16, vfs: int = 32, netnode_vfs: int = 32) -> dict[str, Any]:
    """`hosts` compute hosts with one PF on physnet1, plus a network node for the managed
    DHCP servers (CNCI). The scheduler also places instances on the network node, so it
    gets as many VFs: with 8, instances ate the VFs that new networks' servers needed."""
    compute = [
        {"name": f"node{i}", "pfs": [{"name": "pf0", "physnet": "physnet1", "sriov_totalvfs": vfs}]}
        for i in range(1, hosts + 1)
    ]
    netnode = {
        "name": "netnode",
        "network_node": True,
        "pfs": [{"name": "pf0", "physnet": "physnet1", "sriov_totalvfs": netnode_vfs}],
    }
    return {"physnets": ["physnet1"], "hosts": [*compute, netnode], "underlays": []}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ok(reply: httpx.Response) -> dict:
    """The reply's body, or RuntimeError naming the request and the answer."""
    if reply.status_code >= 400:
        raise RuntimeError(
            f"{reply.request.method} {reply.request.url}: {reply.status_code} {reply.text[:500]}"
        )
    return reply.json() if reply.content else {}


def _vf_attachments(instance: dict) -> list[dict]:
    return [a for a in instance.get("attachments", []) if a.get("vf")]


def _running_with_ip(instance: dict) -> bool:
    atts = _vf_attachments(instance)
    return instance.get("state") == "running" and bool(atts) and all(a.get("ip") for a in atts)


class ClusterBench:
    def __init__(
        self,
        name: str = "benche2e",
        hosts: int = 16,
        vfs: int = 32,
        agent_concurrency: int = 2,
        progress=print,
    ) -> None:
        from ciaoweb.localcluster.cluster import ClusterConfig, LocalCluster

        self.name = name
        self.progress = progress
        db = fresh_database(f"ciaoweb_{name}")
        self.config = ClusterConfig(
            name=name,
            port=_free_port(),
            database_url=db,
            topology=topology(hosts, vfs),
            agent_concurrency=agent_concurrency,
        )
        self.cluster = LocalCluster(self.config, progress=lambda line: progress("  " + line))
        self.listener: EventListener | None = None
        self.tenant: dict = {}
        self.network: dict = {}
        self.results: dict[str, Any] = {}
        self._seq = 0

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        started = time.monotonic()
        self.cluster.start()
        self.results["cluster_start_s"] = time.monotonic() - started
        self.api = self.cluster.api
        self.listener = EventListener(self.cluster.url, self.cluster.admin_token).start()
        self.tenant = ok(self.api.post("/api/v1/tenants/", json={"name": "bench"}))
        self.network = ok(
            self.api.post(
                "/api/v1/networks/",
                json={
                    "kind": "sriov",
                    "tenant": self.tenant["id"],
                    "name": "data",
                    "physnet": "physnet1",
                    "cidr": NETWORK_CIDR,
                    "ipam": "controller",
                    "dns_domain": "bench.example",
                },
            )
        )
        self._wait_dhcp_server()

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.cluster.stop()

    def _wait_dhcp_server(self, timeout: float = 60.0) -> None:
        """The network's dnsmasq on the network node answers: a probe launch gets its IP."""
        instance = self.launch("probe", "container")
        body = self.cluster.wait_instance(instance["id"], timeout=timeout)
        if not _running_with_ip(body):
            raise RuntimeError(f"probe instance did not get its IP: {body}")

    @property
    def server_dir(self) -> Path:
        return (
            Path(self.cluster.sim.state_dir) / "agents" / "netnode" / f"dhcp-{self.network['id']}"
        )

    def _name(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def launch(
        self,
        name: str,
        kind: str,
        client: httpx.Client | None = None,
        host: str | None = None,
        target: tuple[dict, dict] | None = None,
    ) -> dict:
        tenant, network = target or (self.tenant, self.network)
        body = {
            "name": name,
            "kind": kind,
            "tenant": tenant["id"],
            "networks": [{"network": network["id"]}],
        }
        if host:
            body["host"] = host
        return ok((client or self.api).post("/api/v1/instances/", json=body))

    def tenant_with_network(self, name: str, cidr: str) -> tuple[dict, dict]:
        tenant = ok(self.api.post("/api/v1/tenants/", json={"name": name}))
        return tenant, self.make_network(tenant, "data", cidr, dns_domain=f"{name}.example")

    def make_network(self, tenant: dict, name: str, cidr: str, **extra: Any) -> dict:
        """A controller-IPAM SR-IOV network of `tenant` on physnet1 (`extra`: more fields)."""
        body = {
            "kind": "sriov",
            "tenant": tenant["id"],
            "name": name,
            "physnet": "physnet1",
            "cidr": cidr,
            "ipam": "controller",
            **extra,
        }
        return ok(self.api.post("/api/v1/networks/", json=body))

    def _poll_until(
        self, instance_id: str, predicate, timeout: float, interval: float = 0.01
    ) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout
        while True:
            body = self.api.get(f"/api/v1/instances/{instance_id}/").json()
            if predicate(body) or body.get("state") == "error":
                return time.time(), body
            if time.monotonic() > deadline:
                raise RuntimeError(f"instance {instance_id} not ready after {timeout}s: {body}")
            time.sleep(interval)

    def _wait_running(
        self, instance_id: str, since: int, timeout: float = 60.0, host: str | None = None
    ) -> tuple[float, dict]:
        """Receive time of the instance.updated saying running with its VF IPs (on `host`:
        a late message of the previous migration's source release says running too)."""

        def matches(message: dict) -> bool:
            data = message.get("data") or {}
            return (
                message.get("type") == "instance.updated"
                and data.get("id") == instance_id
                and (host is None or data.get("host_name") == host)
                and (_running_with_ip(data) or data.get("state") == "error")
            )

        got = self.listener.wait(matches, timeout, since)
        if got is None:  # websocket lost it: fall back to polling (recorded as such)
            self.results.setdefault("ws_fallbacks", 0)
            self.results["ws_fallbacks"] += 1
            return self._poll_until(
                instance_id,
                lambda b: _running_with_ip(b) and (host is None or b.get("host_name") == host),
                timeout,
            )
        return got[0], got[1]["data"]

    def _wait_lease(self, mac: str, since: int, timeout: float = 30.0) -> tuple[float, dict] | None:
        def matches(message: dict) -> bool:
            data = message.get("data") or {}
            return (
                message.get("type") == "lease.updated"
                and data.get("mac") == mac
                and data.get("state") == "active"
            )

        return self.listener.wait(matches, timeout, since)

    # --- launch to lease -------------------------------------------------------------

    def bench_launch(self, kind: str, count: int) -> dict[str, Any]:
        """Sequential launches: POST -> running with IP (ws), and for VMs -> lease event."""
        to_running, to_lease, to_event, errors, macs = [], [], [], [], []
        for _ in range(count):
            name = self._name("c" if kind == "container" else "v")
            mark = self.listener.mark()
            t0 = time.time()
            created = self.launch(name, kind)
            stamp, body = self._wait_running(created["id"], mark)
            first = self.listener.find(
                lambda m, i=created["id"]: m.get("type") == "instance.updated"
                and (m.get("data") or {}).get("id") == i,
                mark,
            )
            if first:  # API call -> the client has the change (the "within a second")
                to_event.append(first[0][0] - t0)
            if body.get("state") != "running":
                errors.append(body.get("error") or body.get("state"))
                continue
            to_running.append(stamp - t0)
            mac = _vf_attachments(body)[0]["mac"]
            macs.append(mac)
            if kind == "vm":
                lease = self._wait_lease(mac, mark)
                if lease is None:
                    errors.append(f"no lease event for VM {name} ({mac})")
                else:
                    to_lease.append(lease[0] - t0)
        out = {
            "running_with_ip": summary(to_running),
            "api_to_ws": summary(to_event),
            "errors": errors,
            "count": count,
        }
        if kind == "vm":
            out["until_guest_lease"] = summary(to_lease)
        out["samples"] = {
            "running_with_ip": to_running,
            "until_guest_lease": to_lease,
            "api_to_ws": to_event,
        }
        return out

    # --- dual stack ----------------------------------------------------------------------

    def bench_dual_stack(self, kind: str, count: int, timeout: float = 60.0) -> dict[str, Any]:
        """Launches alternating between an IPv4-only network and a dual-stack one (dhcpv6,
        and slaac for VMs) of one tenant, in the same run: POST -> the instance's addresses
        usable inside it, read off the kernel (a container: set by its agent, at `running`;
        a VM: its guest's own DHCPv4, DHCPv6 or SLAAC). The IPv4 launches are the baseline."""
        tenant = ok(self.api.post("/api/v1/tenants/", json={"name": self._name("ds")}))
        modes = {"ipv4": None, "dhcpv6": "dhcpv6"} | ({"slaac": "slaac"} if kind == "vm" else {})
        networks = {
            label: self._network(tenant, f"n{n}", f"10.{90 + n}.0.0/24", mode, n)
            for n, (label, mode) in enumerate(modes.items())
        }
        for network in networks.values():  # each server up before timing (first launch)
            probe = self.launch(self._name("p"), "container", target=(tenant, network))
            self.cluster.wait_instance(probe["id"], timeout=timeout)
        samples: dict[str, list[float]] = {label: [] for label in networks}
        errors: list[str] = []
        for _ in range(count):
            for label, network in networks.items():
                t0 = time.time()
                created = self.launch(self._name(kind[0]), kind, target=(tenant, network))
                att = _vf_attachments(created)[0]
                try:
                    body = self.cluster.wait_instance(created["id"], timeout=timeout)
                    if body.get("state") != "running":
                        raise RuntimeError(body.get("error") or body.get("state"))
                    ifname = att["ifname"]
                    self.cluster.wait_for(
                        lambda b=body, a=att: _configured(b["netns"], a),
                        timeout=timeout,
                        interval=0.02,
                        what=f"{label} addresses on {ifname}",
                    )
                    samples[label].append(time.time() - t0)
                except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                    errors.append(f"{label}: {exc}")
        out: dict[str, Any] = {label: summary(values) for label, values in samples.items()}
        base = out["ipv4"].get("p50")
        for label in networks:
            if label != "ipv4" and base and out[label].get("p50"):
                out[f"{label}_over_ipv4_p50"] = out[label]["p50"] / base
        return out | {"kind": kind, "count": count, "errors": errors[:10], "samples": samples}

    def _network(self, tenant: dict, name: str, cidr: str, mode: str | None, n: int) -> dict:
        ipv6 = {"ipv6_cidr": f"fd00:{90 + n:x}::/64", "ipv6_mode": mode} if mode else {}
        return self.make_network(tenant, name, cidr, **ipv6)

    # --- live path ---------------------------------------------------------------------

    def bench_live_path(self) -> dict[str, Any]:
        """Every lease event dnsmasq's hook wrote (its `time`) vs this client's receive time
        of the lease.updated message for that MAC and IP: the first one after the event."""
        events = [
            json.loads(line)
            for line in (self.server_dir / "events.jsonl").read_text().splitlines()
            if line.strip()
        ]
        received = self.listener.find(lambda m: m.get("type") == "lease.updated")
        by_mac: dict[str, list[float]] = {}
        for stamp, message in received:
            by_mac.setdefault(message["data"]["mac"], []).append(stamp)
        delays = []
        for event in events:
            if event["action"] not in ("add", "old"):
                continue
            later = [t for t in by_mac.get(event["mac"], []) if t >= event["time"] - 0.001]
            if later:
                delays.append(later[0] - event["time"])
        return {"dhcp_ack_to_ws": summary(delays), "events": len(events), "samples": delays}

    # --- migration -------------------------------------------------------------------

    def bench_migration(self, count: int, interval: float = 0.01) -> dict[str, Any]:
        """A container on node1 migrates back and forth between node1 and node2 while a
        peer container on node3 pings it every 10 ms; the gap is the longest time between
        two replies around each migration."""
        mover = self.launch(self._name("mig"), "container", host="node1")
        peer = self.launch(self._name("peer"), "container", host="node3")
        mover = self.cluster.wait_instance(mover["id"])
        peer = self.cluster.wait_instance(peer["id"])
        if not (_running_with_ip(mover) and _running_with_ip(peer)):
            raise RuntimeError(f"migration instances not running: {mover} {peer}")
        target_ip = _vf_attachments(mover)[0]["ip"]
        pinger = Pinger(peer["netns"], target_ip, interval)
        pinger.start()
        gaps, durations, errors = [], [], []
        try:
            time.sleep(0.5)
            for n in range(count):
                host = "node2" if n % 2 == 0 else "node1"
                mark = self.listener.mark()
                t0 = time.time()
                ok(self.api.post(f"/api/v1/instances/{mover['id']}/migrate/", json={"host": host}))
                stamp, body = self._wait_running(mover["id"], mark, host=host)
                if body.get("state") != "running" or body.get("host_name") != host:
                    errors.append(
                        f"{body.get('state')} on {body.get('host_name')}: {body.get('error')}"
                    )
                    continue
                durations.append(stamp - t0)
                time.sleep(0.6)  # replies resume; the source's unplug happens in this window
                t1 = time.time()
                gap = pinger.max_gap(t0 - 0.05, t1)
                if gap is None:
                    errors.append("no ping replies around the migration")
                    continue
                gaps.append(gap)
        finally:
            pinger.stop()
        return {
            "ping_gap": summary(gaps),
            "api_to_running": summary(durations),
            "errors": errors,
            "count": count,
            "interval_s": interval,
            "samples": gaps,
            "lost_replies_total": pinger.lost(),
        }

    # --- burst -------------------------------------------------------------------------

    def bench_burst(
        self, count: int, concurrency: int = 64, timeout: float = 240.0
    ) -> dict[str, Any]:
        # A tenant's primary overlay `default` is a /24 (~250 instances, every instance has
        # eth0 on it): the burst is spread over tenants of BURST_PER_TENANT instances each.
        tenants = [
            self.tenant_with_network(f"burst{n}", f"10.{61 + n}.0.0/22")
            for n in range((count + BURST_PER_TENANT - 1) // BURST_PER_TENANT)
        ]
        names = [self._name("b") for _ in range(count)]
        target_of = {name: tenants[i % len(tenants)] for i, name in enumerate(names)}
        client = self.cluster.client(self.cluster.admin_token)
        client.timeout = httpx.Timeout(120.0)
        created: dict[str, dict] = {}
        rejected: list[str] = []
        lock = threading.Lock()
        mark = self.listener.mark()
        cpu = CpuUse()
        t0 = time.time()

        posted: dict[str, float] = {}

        def one(name: str) -> None:
            try:
                sent = time.time()
                body = self.launch(name, "container", client=client, target=target_of[name])
                with lock:
                    created[body["id"]] = body
                    posted[body["id"]] = sent
            except Exception as exc:  # noqa: BLE001 - counted as a failure
                with lock:
                    rejected.append(f"{name}: {exc}")

        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, names))
        accepted_s = time.time() - t0
        ids = set(created)
        done_at: dict[str, float] = {}
        failed: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        index = mark
        while len(done_at) + len(failed) < len(ids) and time.monotonic() < deadline:
            self.listener.wait(
                lambda m: m.get("type") == "instance.updated"
                and (m.get("data") or {}).get("id") in ids,
                timeout=1.0,
                since=index,
            )
            index = self.listener.mark()
            for stamp, message in self.listener.find(
                lambda m: m.get("type") == "instance.updated"
                and (m.get("data") or {}).get("id") in ids,
                since=mark,
            ):
                data = message["data"]
                if _running_with_ip(data):
                    done_at.setdefault(data["id"], stamp)
                elif data.get("state") == "error":
                    failed.setdefault(data["id"], data.get("error", ""))
        cpu_use = cpu.result(len(ids) or 1)
        # the truth at the end: every instance's state from the API
        states: dict[str, int] = {}
        without_ip = 0
        for instance_id in ids:
            body = self.api.get(f"/api/v1/instances/{instance_id}/").json()
            states[body.get("state", "?")] = states.get(body.get("state", "?"), 0) + 1
            if body.get("state") == "running" and not _running_with_ip(body):
                without_ip += 1
        all_done = max(done_at.values()) - t0 if len(done_at) == count else None
        last_done = max(done_at.values()) - t0 if done_at else None
        client.close()
        return {
            "count": count,
            "concurrency": concurrency,
            "accepted": len(ids),
            "rejected": rejected[:10],
            "rejected_count": len(rejected),
            "accept_all_s": accepted_s,
            "all_running_s": all_done,
            "running_with_ip": len(done_at),
            "errors": len(failed),
            "error_samples": list(failed.values())[:5],
            "final_states": states,
            "running_without_ip": without_ip,
            "throughput_per_s": (len(done_at) / last_done) if last_done else None,
            "last_running_s": last_done,
            "tenants": len(tenants),
            "completion_s": sorted(t - t0 for t in done_at.values()),
            # each instance from its own POST to running with its IP
            "launch_to_running": summary([done_at[i] - posted[i] for i in done_at]),
            "cpu": cpu_use,
            "lost": count
            - sum(states.values())
            + states.get("pending", 0)
            + states.get("provisioning", 0),
        }


def _configured(netns: str, attachment: dict) -> bool:
    """The attachment's IPv4 (and IPv6, on a dual-stack network) are on its interface
    inside the instance, IPv6 past DAD: what a workload inside could use."""
    shown = subprocess.run(
        ["ip", "-n", netns, "-o", "addr", "show", "dev", attachment["ifname"]],
        capture_output=True,
        text=True,
    ).stdout
    lines = shown.splitlines()
    has_v4 = any(f"inet {attachment['ip']}/" in line for line in lines)
    if not attachment.get("ipv6"):
        return has_v4
    v6 = [line for line in lines if f"inet6 {attachment['ipv6']}/" in line]
    return has_v4 and bool(v6) and "tentative" not in v6[0]


class Pinger:
    """`ping -D -i interval` from the peer's namespace; reply times parsed live."""

    def __init__(self, netns: str, ip: str, interval: float) -> None:
        self.argv = ["ip", "netns", "exec", netns, "ping", "-D", "-n", "-i", str(interval), ip]
        self.replies: list[float] = []
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0

    def start(self) -> None:
        self._proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            if line.startswith("[") and "bytes from" in line:
                stamp = float(line[1 : line.index("]")])
                with self._lock:
                    self.replies.append(stamp)
            elif "packets transmitted" in line:
                self.sent = int(line.split()[0])

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(2)
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def max_gap(self, start: float, end: float) -> float | None:
        with self._lock:
            window = [t for t in self.replies if start <= t <= end]
        if len(window) < 2:
            return None
        return max(b - a for a, b in zip(window, window[1:], strict=False))

    def lost(self) -> int | None:
        return (self.sent - len(self.replies)) if self.sent else None
