"""`python -m bench` (`make bench`): every figure of issue 7 in one run, < 15 minutes.

Phases (each one's result lands in bench/results.json even if a later one fails):
  1. simulator scale: 16 hosts x 64 VFs up and down, time and memory (child process)
  2. control-plane scale: place() and allocate_ip() at 100 vs 100,000 VFs, empty vs
     full /16, a launch's DHCP refresh at 100 vs 10,000 instances; 100 vs 1,000 hosts
     heartbeating: the liveness check and API reads (child processes, scratch
     PostgreSQL DBs)
  3. a local cluster `benche2e` (16 hosts + netnode, Redis DB 10, scratch DB)
  4. raw floors on a bare simulator `benchfloor` of the same size, beside the idle cluster
  5. launch to lease (containers, VMs), dual stack against IPv4 (same run), live path,
     migration downtime, burst of 256, dead-node detection and an idle run without flaps
  6. the real kernel (issue 13): launch to lease on a QEMU igb guest of a `CIAO_NODES=qemu`
     cluster against the raw floor measured inside the same guest (child process)
Environment: CIAO_BENCH_LAUNCHES (50), CIAO_BENCH_MIGRATIONS (20), CIAO_BENCH_BURST (256),
CIAO_BENCH_DUAL_STACK (10: launches of each kind on an IPv4-only and a dual-stack network).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .report import write_outputs
from .util import BENCH_DIR, REPO

LAUNCHES = int(os.environ.get("CIAO_BENCH_LAUNCHES", "50"))
MIGRATIONS = int(os.environ.get("CIAO_BENCH_MIGRATIONS", "20"))
BURST = int(os.environ.get("CIAO_BENCH_BURST", "256"))
IDLE = float(os.environ.get("CIAO_BENCH_IDLE", "120"))  # seconds of the no-flap run
DUAL_STACK = int(os.environ.get("CIAO_BENCH_DUAL_STACK", "10"))


def say(line: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {line}", flush=True)


def _child(module: str, results: dict, key: str) -> None:
    out = Path(f"/tmp/ciao-bench-{key}-{os.getpid()}.json")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", module, str(out)], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        results[key] = {"error": done.stderr[-2000:]}
        say(f"{key} FAILED: {done.stderr.strip().splitlines()[-1:]}")
        return
    results[key] = json.loads(out.read_text())
    results[key]["phase_s"] = time.monotonic() - started
    out.unlink(missing_ok=True)


def _phase(results: dict, key: str, fn) -> None:
    started = time.monotonic()
    try:
        results[key] = fn()
        results[key]["phase_s"] = time.monotonic() - started
    except Exception as exc:  # noqa: BLE001 - recorded, the other phases still run
        results[key] = {"error": f"{exc}", "trace": traceback.format_exc()[-3000:]}
        say(f"{key} FAILED: {exc}")


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t_start = time.monotonic()
    results: dict = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
        },
        "params": {
            "launches": LAUNCHES,
            "migrations": MIGRATIONS,
            "burst": BURST,
            "dual_stack": DUAL_STACK,
        },
    }

    def save() -> None:
        results["total_s"] = time.monotonic() - t_start
        write_outputs(results, BENCH_DIR)

    try:
        say("simulator scale: 16 hosts x 64 VFs")
        _child("bench.simscale", results, "sim_scale")
        save()
        say("control-plane scale: placement, IP allocation, DHCP refresh")
        _child("bench.alloc", results, "control_plane")
        save()
        say("hosts at scale: 100 and 1,000 hosts heartbeating, the check and the API")
        _child("bench.hostscale", results, "host_scale")
        save()
        _cluster_phases(results, save)
        say("real kernel: a CIAO_NODES=qemu cluster, launch to lease against its floor")
        _child("bench.realnic", results, "realnic")
        save()
    finally:
        save()
        say(f"done in {results['total_s']:.0f}s: bench/results.json, bench/results.md, bench/*.png")
        print((BENCH_DIR / "results.md").read_text())
    return 0


def _cluster_phases(results: dict, save) -> None:
    from . import deadnode
    from .e2e import ClusterBench
    from .floor import Floor
    from .hotplug import ATTACHES, bench_hot_attach

    say("cluster benche2e: 16 hosts + netnode")
    bench = ClusterBench(name="benche2e", hosts=16, vfs=32, progress=say)
    try:
        bench.start()
        results["cluster"] = {"start_s": bench.results["cluster_start_s"]}
        say(f"cluster up in {bench.results['cluster_start_s']:.1f}s; raw floors on benchfloor")
        floor = Floor(name="benchfloor", hosts=16, vfs=32)
        try:
            _phase(results, "floor_launch", lambda: floor.launch(LAUNCHES))
            _phase(results, "floor_migration", lambda: floor.migration(MIGRATIONS))
            _phase(results, "floor_hot_attach", lambda: floor.hot_attach(ATTACHES))
        finally:
            floor.down()
        save()
        workers = 16 * bench.config.agent_concurrency  # as many as the agents run at once
        say(f"burst floor: {BURST} launches by {workers} bare processes on benchpar")
        burst_floor = Floor(name="benchpar", hosts=16, vfs=32)
        try:
            _phase(results, "floor_burst", lambda: burst_floor.parallel_launch(BURST, workers))
        finally:
            burst_floor.down()
        save()
        say(f"launch to lease: {LAUNCHES} containers")
        _phase(results, "launch_container", lambda: bench.bench_launch("container", LAUNCHES))
        save()
        say(f"launch to lease: {LAUNCHES} VMs")
        _phase(results, "launch_vm", lambda: bench.bench_launch("vm", LAUNCHES))
        save()
        say(f"dual stack against IPv4, same run: {DUAL_STACK} launches of each, containers and VMs")
        _phase(
            results, "dual_stack_container", lambda: bench.bench_dual_stack("container", DUAL_STACK)
        )
        _phase(results, "dual_stack_vm", lambda: bench.bench_dual_stack("vm", DUAL_STACK))
        save()
        _phase(results, "live_path", bench.bench_live_path)
        say(f"migration downtime: {MIGRATIONS} migrations")
        _phase(results, "migration", lambda: bench.bench_migration(MIGRATIONS))
        save()
        say(f"hot-attach: {ATTACHES} attaches into a running container, API -> first ping")
        _phase(results, "hot_attach", lambda: bench_hot_attach(bench, ATTACHES))
        save()
        say(f"burst: {BURST} instances at once")
        _phase(results, "burst", lambda: bench.bench_burst(BURST))
        results["cluster"]["ws_fallbacks"] = bench.results.get("ws_fallbacks", 0)
        save()
        say("dead node: kill -9 of agents until offline, then an idle run under API load")
        _phase(results, "dead_node", lambda: deadnode.detection(bench))
        _phase(results, "idle_flaps", lambda: deadnode.idle_flaps(bench, IDLE))
        save()
    finally:
        say("tearing the cluster down")
        t0 = time.monotonic()
        bench.stop()
        results.setdefault("cluster", {})["stop_s"] = time.monotonic() - t0


if __name__ == "__main__":
    sys.exit(main())
