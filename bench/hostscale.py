"""The control plane at 100 and at 1,000 hosts (100 VFs each: 10,000 and 100,000 VFs).

Light agents beat for every host (one pipelined SET per host a second in Redis DB 10,
`ciaoweb.core.liveness`, what a real agent sends) while the controller's check runs every
second as beat runs it (`check_heartbeats`: read every key's age, `note_liveness`), and
the API answers lists and details (DRF's test client, in-process, admin). The beats and
the check run in a process of their own, as the agents and the liveness worker do beside
daphne: in the API's process they would hold its interpreter lock for the check's 70 ms
a second and be measured as API latency. Reported: the check's cost per host, the API's
p50/p95, and any host that flapped offline although it beat all along. Run as a child
process (`python -m bench.hostscale OUT.json`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

from .alloc import analyze, bulk_inventory, setup_django
from .util import drop_database, fresh_database, summary

DB_NAME = "ciaoweb_benchhosts"
REDIS_URL = "redis://127.0.0.1:6379/10"
PREFIX = "hs"
VFS_PER_HOST = 100
SIZES = (100, 1000)
SECONDS = 20.0  # of heartbeats and checks at each size
API_SAMPLES = 200


class Beats:
    """Every host's agent, as far as liveness goes: one SET per host per second."""

    def __init__(self, client, nodes: list[str]) -> None:
        self.client, self.nodes = client, nodes
        self.stop = threading.Event()
        self.late = 0  # rounds that took longer than the interval
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from ciaoweb.core.liveness import alive_key

        while not self.stop.is_set():
            t0 = time.monotonic()
            pipe = self.client.pipeline(transaction=False)
            for node in self.nodes:
                pipe.set(alive_key(node), "30000", px=30000)
            pipe.execute()
            spent = time.monotonic() - t0
            self.late += spent > 1.0
            self.stop.wait(max(0.0, 1.0 - spent))


class Checks:
    """beat's `check_heartbeats` every second, timed."""

    def __init__(self, client) -> None:
        self.client = client
        self.stop = threading.Event()
        self.seconds: list[float] = []
        self.offline: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from django.db import connection

        from ciaoweb.inventory.services import check_liveness

        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                changed = check_liveness(self.client)
                self.seconds.append(time.perf_counter() - t0)
                self.offline += changed["offline"]
                self.stop.wait(max(0.0, 1.0 - self.seconds[-1]))
        finally:
            connection.close()


def _api(hosts: int) -> dict:
    """p50/p95 of each read an operator's dashboard or CLI makes, `API_SAMPLES` each."""
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from ciaoweb.inventory.models import Host, PhysicalFunction

    admin = get_user_model().objects.get(username="benchadmin")
    client = APIClient()
    client.force_authenticate(admin)
    host_ids = [str(pk) for pk in Host.objects.values_list("pk", flat=True)]
    pf_ids = [str(pk) for pk in PhysicalFunction.objects.values_list("pk", flat=True)]
    reads = {
        "hosts_list": lambda: "/api/v1/hosts/",
        "hosts_list_last_page": lambda: f"/api/v1/hosts/?offset={hosts - 20}&limit=20",
        "host_detail": lambda: f"/api/v1/hosts/{random.choice(host_ids)}/",
        "vfs_list_free": lambda: "/api/v1/virtual-functions/?state=free&limit=100",
        "vfs_of_a_pf": lambda: f"/api/v1/virtual-functions/?pf={random.choice(pf_ids)}",
        "pfs_list": lambda: "/api/v1/physical-functions/",
    }
    out = {}
    for name, path in reads.items():
        times = []
        for _ in range(API_SAMPLES):
            url = path()
            t0 = time.perf_counter()
            reply = client.get(url)
            times.append(time.perf_counter() - t0)
            if reply.status_code != 200:
                raise RuntimeError(f"GET {url}: {reply.status_code} {reply.content[:200]!r}")
        out[name] = summary(times)
    return out


def _load(url: str, out_path: str) -> int:
    """The beats and the checks, until SIGTERM; prints `ready` after the first check."""
    import redis as redis_py

    setup_django(url, migrate=False)
    from ciaoweb.inventory.models import Host

    redis = redis_py.Redis.from_url(REDIS_URL)
    nodes = list(Host.objects.order_by("name").values_list("name", flat=True))
    beats, checks = Beats(redis, nodes), Checks(redis)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    beats.thread.start()
    time.sleep(1.5)  # every host has beaten once before the first check
    checks.thread.start()
    while not checks.seconds:
        if not checks.thread.is_alive():
            return 1  # its error is on stderr
        time.sleep(0.05)
    print("ready", flush=True)
    stop.wait()
    checks.stop.set()
    checks.thread.join()
    beats.stop.set()
    beats.thread.join()
    with open(out_path, "w") as fh:
        json.dump({"seconds": checks.seconds, "offline": checks.offline, "late": beats.late}, fh)
    return 0


def _measure(url: str, hosts: int) -> dict:
    from ciaoweb.inventory.models import Host

    out_path = f"/tmp/ciao-bench-hostload-{os.getpid()}.json"
    load = subprocess.Popen(
        [sys.executable, "-m", "bench.hostscale", "load", url, out_path],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if load.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the beats and checks did not start (rc {load.wait()})")
        t0 = time.monotonic()
        api = _api(hosts)
        time.sleep(max(0.0, SECONDS - (time.monotonic() - t0)))
    finally:
        load.send_signal(signal.SIGTERM)
        load.wait(timeout=60)
    with open(out_path) as fh:
        loaded = json.load(fh)
    os.unlink(out_path)
    check = summary(loaded["seconds"])
    return {
        "hosts": hosts,
        "vfs": hosts * VFS_PER_HOST,
        "check": check,
        "check_per_host_ms": 1000 * check["p50"] / hosts,
        "api": api,
        "false_offline": loaded["offline"],
        "late_beat_rounds": loaded["late"],
        "online_at_end": Host.objects.filter(state="online").count(),
    }


def main(argv: list[str]) -> int:
    import redis as redis_py

    if argv[1] == "load":
        return _load(argv[2], argv[3])

    url = fresh_database(DB_NAME)
    redis = redis_py.Redis.from_url(REDIS_URL)
    try:
        setup_django(url)
        from django.contrib.auth import get_user_model
        from django.db import connections
        from django.test.utils import setup_test_environment

        setup_test_environment()  # the test client's host name is allowed
        get_user_model().objects.create_superuser("benchadmin", password="bench-only-pw-1")
        runs, made = {}, 0
        for hosts in SIZES:
            t0 = time.perf_counter()
            bulk_inventory(PREFIX, made, hosts - made, VFS_PER_HOST)
            analyze()
            made = hosts
            build = time.perf_counter() - t0
            runs[str(hosts)] = _measure(url, hosts) | {"inventory_build_s": build}
        small, big = (runs[str(n)] for n in SIZES)
        out = {
            "runs": runs,
            "check_per_host_ratio": big["check_per_host_ms"] / small["check_per_host_ms"],
            "api_p95_ratio": {
                name: big["api"][name]["p95"] / small["api"][name]["p95"] for name in big["api"]
            },
            "false_offline": small["false_offline"] + big["false_offline"],
        }
        connections.close_all()
    finally:
        keys = list(redis.scan_iter(f"ciao.alive.{PREFIX}*"))
        if keys:
            redis.delete(*keys)
        drop_database(DB_NAME)
    with open(argv[1], "w") as fh:
        json.dump(out, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
