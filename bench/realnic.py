"""Launch to lease on a real-kernel node (issue 13): a `CIAO_NODES=qemu` cluster (QEMU
guests with emulated igb NICs, agents on igb/igbvf), and the raw floor of the same
kernel steps measured inside the same guest in the same run (bench.realnic_floor).

The product's figure: `POST instances/` of a container on node1 on a `dynamic` network
until the API shows it running with its VF attachment's lease (the agent's udhcpc got
it), polled every 50 ms. Launches are one at a time, each deleted before the next, so
the floor's VF (the PF's last) is never one the scheduler hands out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .e2e import _free_port, ok
from .util import REPO, fresh_database, ratio, summary

API = "/api/v1"
FLOOR_PF, FLOOR_VF = "pf1", 6  # physnet2; the compute guests' last igb VF


def _launch(api: httpx.Client, tenant: dict, network: dict, name: str) -> float:
    t0 = time.monotonic()
    made = ok(
        api.post(
            f"{API}/instances/",
            json={
                "name": name,
                "kind": "container",
                "tenant": tenant["id"],
                "host": "node1",
                "networks": [{"network": network["id"]}],
            },
        )
    )
    while True:
        body = ok(api.get(f"{API}/instances/{made['id']}/"))
        vf = [a for a in body["attachments"] if a["vf"]]
        if body["state"] == "running" and vf and vf[0]["ip"]:
            elapsed = time.monotonic() - t0
            break
        if body["state"] == "error" or time.monotonic() - t0 > 300:
            raise RuntimeError(f"{name}: {body['state']} {body['error']}")
        time.sleep(0.05)
    api.delete(f"{API}/instances/{made['id']}/")
    while api.get(f"{API}/instances/{made['id']}/").status_code != 404:
        time.sleep(0.1)
    return elapsed


def bench_realnic(launches: int = 8, progress=print) -> dict[str, Any]:
    from ciaoweb.localcluster.cluster import ClusterConfig, LocalCluster
    from ciaoweb.localcluster.management.commands.demo import qemu_settings

    config = ClusterConfig(
        name="benchqemu",
        port=_free_port(),
        database_url=fresh_database("ciaoweb_benchqemu"),
        **qemu_settings(),
    )
    cluster = LocalCluster(config, progress=lambda line: progress(f"  {line.strip()}"))
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}
    t0 = time.monotonic()
    try:
        cluster.start()
        results["cluster_start_s"] = time.monotonic() - t0
        results["boot_s"] = cluster.qemu.boot_seconds
        api = cluster.api
        tenant = ok(api.post(f"{API}/tenants/", json={"name": "benchrn"}))
        network = ok(
            api.post(
                f"{API}/networks/",
                json={
                    "tenant": tenant["id"],
                    "name": "lease",
                    "kind": "sriov",
                    "physnet": "physnet2",
                    "cidr": "10.72.0.0/24",
                    "ipam": "dynamic",
                },
            )
        )
        progress("  warm-up launch (the network's DHCP server comes up)")
        results["first_launch_s"] = _launch(api, tenant, network, "warm")
        progress(f"  raw floor inside node1: {launches} launches on {FLOOR_PF} VF {FLOOR_VF}")
        out = cluster.run_dir / "nodes" / "node1" / "floor.json"
        done = _floor_in_guest(cluster, "node1", out, network["vlan"], launches)
        rounds = json.loads(out.read_text())["rounds"]
        results["floor_rounds"] = rounds
        results["floor_launch_to_lease"] = summary([r["lease"] for r in rounds])
        results["floor_steps_p50"] = {
            step: summary([r[step] for r in rounds])["p50"] for step in rounds[0]
        }
        results["floor_exec_s"] = done
        progress(f"  product: {launches} container launches on node1")
        samples = [_launch(api, tenant, network, f"rn{n}") for n in range(launches)]
        results["launch_to_lease"] = summary(samples)
        results["ratio_p50"] = ratio(
            results["launch_to_lease"]["p50"], results["floor_launch_to_lease"]["p50"]
        )
    finally:
        t1 = time.monotonic()
        cluster.stop()
        results["stop_s"] = time.monotonic() - t1
    return results


def _floor_in_guest(cluster, host: str, out: Path, vlan: int, count: int) -> float:
    """Run the floor script in the guest through its exec prefix; seconds it took."""
    t0 = time.monotonic()
    argv = [
        *cluster.exec_prefix(host),
        "env",
        "-C",
        str(REPO),
        sys.executable,
        "-m",
        "bench.realnic_floor",
        str(out),
        "--pf",
        FLOOR_PF,
        "--vf",
        str(FLOOR_VF),
        "--vlan",
        str(vlan),
        "--count",
        str(count),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"floor in {host} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.monotonic() - t0


def main(argv: list[str]) -> int:
    """`python -m bench.realnic OUT.json`: the phase alone, as `python -m bench` runs it."""
    result = bench_realnic(progress=lambda line: print(line, flush=True))
    Path(argv[0]).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
