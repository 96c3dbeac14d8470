"""One launch, stage by stage: when each websocket event of sequential launches arrives.

    python -m bench.timeline [COUNT] [container|vm]

A cluster of two hosts and a network node (`benchtl`); each launch is POSTed on the
bench network and waited for until running, then its events are read off the websocket
by type and state. Prints each stage's p50 over the launches (ms after the POST): what
`docs/performance.md` reads the control plane's share of a launch from.
"""

from __future__ import annotations

import sys
import time

from .e2e import ClusterBench
from .util import pct

SETTLE_S = 0.5  # after `running`: a VM guest's own lease event comes later


def _stage(message: dict) -> str | None:
    data = message.get("data") or {}
    kind = message.get("type")
    if kind == "operation.updated":
        return f"operation {data.get('state')} {data.get('step') or ''}".rstrip()
    if kind in ("instance.updated", "lease.updated"):
        return f"{kind.split('.')[0]} {data.get('state')}"
    return None


def launch_stages(bench: ClusterBench, name: str, kind: str) -> dict[str, float]:
    mark = bench.listener.mark()
    t0 = time.time()
    created = bench.launch(name, kind)
    stages = {"POST answered": time.time() - t0}
    bench._wait_running(created["id"], mark)
    time.sleep(SETTLE_S)
    for stamp, message in bench.listener.find(lambda m: True, mark):
        stage = _stage(message)
        if stage is not None:
            stages.setdefault(stage, stamp - t0)  # the first of each
    return stages


def main(argv: list[str]) -> int:
    count = int(argv[1]) if len(argv) > 1 else 12
    kind = argv[2] if len(argv) > 2 else "container"
    bench = ClusterBench(name="benchtl", hosts=2, vfs=max(8, count), progress=print)
    bench.start()
    try:
        rows = [launch_stages(bench, f"t{n}", kind) for n in range(count)]
    finally:
        bench.stop()
    stages = {stage for row in rows for stage in row}
    p50 = {s: pct((row[s] for row in rows if s in row), 50) for s in stages}
    for stage, seconds in sorted(p50.items(), key=lambda item: item[1]):
        print(f"{1000 * seconds:7.0f} ms  {stage}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
