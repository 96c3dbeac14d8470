"""Simulator scale: build and teardown of 16 hosts x 64 VFs (1,024 VFs), with memory.

Run as a child (`python -m bench.simscale OUT.json`) so its max RSS is its own.
Kernel memory is the MemAvailable drop while the simulator is up (noisy on a shared
machine: other processes allocate too).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from .util import mem_available_kib

NAME = "benchscale"


def _dir_size(path) -> int:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out else 0


def main(argv: list[str]) -> int:
    from simulator import Simulator, Topology

    hosts, vfs = 16, 64
    topo = Topology.from_flags(hosts=hosts, pfs=1, vfs=vfs, physnets=["physnet1"])
    before = mem_available_kib()
    t0 = time.monotonic()
    sim = Simulator.up(topo, name=NAME)
    try:
        build = time.monotonic() - t0
        time.sleep(0.5)
        up_kib = before - mem_available_kib()
        state_kib = _dir_size(sim.state_dir)
    finally:
        t1 = time.monotonic()
        sim.down()
        teardown = time.monotonic() - t1
    out = {
        "hosts": hosts,
        "vfs_per_host": vfs,
        "vfs": hosts * vfs,
        "build_s": build,
        "teardown_s": teardown,
        "kernel_and_state_mib": up_kib / 1024,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "state_dir_mib": state_kib / 1024,
    }
    with open(argv[1], "w") as fh:
        json.dump(out, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
