"""Hot-attach latency (issue 17): API call -> first ping over the new interface, against a
raw floor measured in the same run (the same VF plug + DHCP + ping by a bare script,
`Floor.hot_attach`).

Cluster: a running container on `data` gets a VF on network `extra` (controller IPAM)
by `POST instances/{id}/attachments/`; the clock stops at the first reply of the
network's DHCP/DNS server (its last usable address) to a ping bound to the new
interface, sent from inside the instance as soon as the interface holds its address
(polled every 5 ms). Each sample is detached again (not
timed) so the next one plugs a fresh VF with a new MAC. Samples alternate: the default
address (the lowest free: the one the last detach released) and a requested address
never used before (`api_to_first_ping_fresh_ip`).

`make bench` runs it as phases `floor_hot_attach` and `hot_attach`. Alone:
`python -m bench.hotplug` starts its own cluster and floor (CIAO_BENCH_HOTPLUG_HOSTS
hosts, 4 by default) and merges both phases into bench/results.json and results.md,
saying which run they come from.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from typing import Any

from .e2e import ok
from .util import BENCH_DIR, summary

ATTACHES = int(os.environ.get("CIAO_BENCH_ATTACHES", "20"))


def _pings(netns: str, ifname: str, ip: str) -> bool:
    argv = ["ip", "netns", "exec", netns, "ping", "-n", "-q", "-c", "1", "-W", "1", "-I", ifname]
    return subprocess.run([*argv, ip], capture_output=True).returncode == 0


def _first_ping(netns: str, attachment: dict, server: str) -> bool:
    """A ping over the interface once it holds its address. Not before: an interface up
    without one sends the echo from another interface's address, whose reply never
    comes back, and each such try waits out ping's 1 s (what the floor never does)."""
    shown = ["ip", "-n", netns, "-4", "-o", "addr", "show", "dev", attachment["ifname"]]
    addresses = subprocess.run(shown, capture_output=True, text=True).stdout
    return f"inet {attachment['ip']}/" in addresses and _pings(netns, attachment["ifname"], server)


def bench_hot_attach(bench, count: int, timeout: float = 60.0) -> dict[str, Any]:
    """`count` sequential attaches into one running container of `bench` (a ClusterBench)."""
    api = bench.api
    tenant = ok(api.post("/api/v1/tenants/", json={"name": "benchhot"}))
    networks = {
        name: bench.make_network(tenant, name, cidr)
        for name, cidr in (("data", "10.80.0.0/24"), ("extra", "10.81.0.0/24"))
    }
    server = str(ipaddress.IPv4Network(networks["extra"]["cidr"]).broadcast_address - 1)
    created = bench.launch("hot1", "container", target=(tenant, networks["data"]))
    instance = bench.cluster.wait_instance(created["id"], timeout=timeout)
    if instance.get("state") != "running":
        raise RuntimeError(f"the container did not run: {instance}")
    # The extra network's server up first (a first attach waits for a new dnsmasq).
    probe = bench.launch("hotprobe", "container", target=(tenant, networks["extra"]))
    bench.cluster.wait_instance(probe["id"], timeout=timeout)
    samples, to_active, errors = [], [], []
    fresh: list[float] = []  # a new address each time, not the one the last detach freed
    for n in range(2 * count):
        body = {"network": networks["extra"]["id"]}
        if n % 2:
            body["ip"] = str(ipaddress.IPv4Network(networks["extra"]["cidr"])[100 + n])
        t0 = time.time()
        attachment = ok(api.post(f"/api/v1/instances/{instance['id']}/attachments/", json=body))
        try:
            bench.cluster.wait_for(
                lambda a=attachment: _first_ping(instance["netns"], a, server),
                timeout=timeout,
                interval=0.005,
                what=f"a ping over {attachment['ifname']}",
            )
            (fresh if n % 2 else samples).append(time.time() - t0)
            state = bench.cluster.wait_for(
                lambda a=attachment: _settled(api, a["id"]), timeout=timeout, interval=0.01
            )
            if not n % 2:
                to_active.append(time.time() - t0)
            if state != "active":
                errors.append(f"attachment {state}")
        except Exception as exc:  # noqa: BLE001 - counted, the run goes on
            errors.append(str(exc))
        api.delete(f"/api/v1/attachments/{attachment['id']}/")
        bench.cluster.wait_for(
            lambda a=attachment: api.get(f"/api/v1/attachments/{a['id']}/").status_code == 404,
            timeout=timeout,
            what="the attachment detached",
        )
    return {
        "api_to_first_ping": summary(samples),
        "api_to_active_seen": summary(to_active),
        "api_to_first_ping_fresh_ip": summary(fresh),
        "count": count,
        "errors": errors[:10],
        "samples": samples,
    }


def _settled(api, attachment_id: str) -> str | None:
    state = api.get(f"/api/v1/attachments/{attachment_id}/").json().get("state")
    return state if state in ("active", "error") else None


def main() -> int:
    """Both phases in one run of their own, merged into the committed results."""
    from .e2e import ClusterBench
    from .floor import Floor
    from .report import write_outputs

    hosts = int(os.environ.get("CIAO_BENCH_HOTPLUG_HOSTS", "4"))
    path = BENCH_DIR / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    run = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "hosts": hosts, "vfs": 32}
    bench = ClusterBench(name="benchhot", hosts=hosts, vfs=32, progress=print)
    try:
        bench.start()
        floor = Floor(name="benchhotfloor", hosts=hosts, vfs=32)
        try:
            results["floor_hot_attach"] = floor.hot_attach(ATTACHES)
        finally:
            floor.down()
        results["hot_attach"] = bench_hot_attach(bench, ATTACHES)
    finally:
        bench.stop()
    results["hot_attach_run"] = run
    write_outputs(results, BENCH_DIR)
    print(json.dumps({k: results[k] for k in ("floor_hot_attach", "hot_attach")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
