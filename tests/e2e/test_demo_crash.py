"""Issue 12, process hygiene: the demo's whole process group killed with SIGKILL (as a
user's `kill -9 -<pgid>` does), then what `make clean` runs, scoped to this demo: no
namespace of it is left, no process it started (daphne, the controller's worker with its
pool children and beat, every agent with its children, dnsmasq, simulator guests) still
runs, and its port is free.

The demo runs as a user starts it (`python manage.py demo`, in its own session), under
its own name, var dir, simulator dir and port (and, as every cluster, its own Redis), so
it never touches a developer's own demo nor another test's cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ciaoweb.localcluster.processes import started_by
from tests.conftest import _free_port
from tests.demo_runs import clean_demo, demo_env, start_demo, wait_demo
from tests.prereqs import require_sim

pytestmark = pytest.mark.e2e

UP_TIMEOUT = 360.0  # 20-60 s on an idle machine; generous for a loaded one
SETTLE = 120.0

Ident = tuple[int, int]  # (pid, start time): a recycled pid is another process


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[19])


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _ident(pid: int) -> Ident | None:
    stat = _stat(pid)
    return None if stat is None or stat[0] == "Z" else (pid, stat[2])


def _alive(ident: Ident) -> bool:
    return _ident(ident[0]) == ident


def _describe(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
    return "?"


def _pid_file(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return None


def _namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(prefix)]


def _netns_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(word) for word in out.split()]


def _port_listened(port: int) -> bool:
    with socket.socket() as sock:
        # TIME_WAIT connections of a dead server do not count; a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return True
    return False


def snapshot(run_dir: Path, sim_dir: Path, prefix: str) -> dict[Ident, str]:
    """Every process the demo started, labelled: what its pid files name (its own, the
    simulator's, the agents' dnsmasq servers), their descendants, and whatever runs in
    its namespaces."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        if (stat := _stat(pid)) is not None:
            children.setdefault(stat[1], []).append(pid)
    roots: dict[int, str] = {}
    for kind, pattern, base in (
        ("cluster", "pids/*.pid", run_dir),
        ("simulator", "pids/*.pid", sim_dir),
        ("agent daemon", "agents/*/dhcp-*/dnsmasq.pid", sim_dir),
    ):
        for path in sorted(base.glob(pattern)):
            if (pid := _pid_file(path)) is not None:
                roots[pid] = f"{kind} {path.relative_to(base)}"
    for ns in _namespaces(prefix):
        for pid in _netns_pids(ns):
            roots.setdefault(pid, f"in netns {ns}")
    found: dict[Ident, str] = {}
    pending = list(roots.items())
    while pending:
        pid, label = pending.pop()
        if (ident := _ident(pid)) is not None and ident not in found:
            found[ident] = f"{label}: {_describe(pid)}"
            pending += [(child, f"child of {pid} ({label})") for child in children.get(pid, [])]
    return found


def marked(run_dir: Path) -> list[int]:
    """Live processes carrying the cluster's run-dir marker in their environment."""
    return [pid for pid in _pids() if _ident(pid) is not None and started_by(pid, run_dir)]


@pytest.mark.timeout(UP_TIMEOUT + SETTLE + 120)
def test_make_clean_ends_everything_of_a_demo_killed_by_sigkill(searchable_tmp):
    require_sim()
    name = f"crash{os.getpid() % 10000}"
    prefix = f"ciao-{name}-"
    # Not tmp_path: its 0700 parents would keep the demo's dnsmasq (ciao-dnsmasq) out.
    tmp_path = searchable_tmp
    var, sim_base = tmp_path / "var", tmp_path / "sim"
    run_dir, sim_dir = var / "cluster" / name, sim_base / name
    port = _free_port()
    env = demo_env(
        CIAO_VAR_DIR=str(var),
        CIAO_SIM_DIR=str(sim_base),
        CIAO_DEMO_NAME=name,
        CIAO_PORT=str(port),  # the database: a fresh SQLite under var; Redis: its own
    )
    log = tmp_path / "demo.log"
    var.mkdir()
    demo = start_demo(env, log)
    try:
        info = wait_demo(
            lambda: (var / "demo.json").exists() and json.loads((var / "demo.json").read_text()),
            UP_TIMEOUT,
            "demo.json",
            demo,
            log,
        )
        token = httpx.post(
            f"{info['url']}/api/v1/auth/token/",
            json={"username": info["username"], "password": info["password"]},
            timeout=30,
        ).json()["token"]
        api = httpx.Client(
            base_url=info["url"], headers={"Authorization": f"Token {token}"}, timeout=30
        )

        def settled() -> bool:
            rows = api.get("/api/v1/instances/", params={"page_size": 1000}).json()["results"]
            return bool(rows) and all(row["state"] in ("running", "error") for row in rows)

        # The seeded instances up: guests booted, dnsmasq serving, udhcpc holding leases.
        wait_demo(settled, SETTLE, "the seeded instances settled", demo, log)
        api.close()

        # What the demo started: seen twice, so a short-lived command (an `ip`, an arping)
        # that happens to run now does not count.
        first = snapshot(run_dir, sim_dir, prefix)
        time.sleep(2.0)
        second = snapshot(run_dir, sim_dir, prefix)
        recorded = {ident: label for ident, label in second.items() if ident in first}
        labels = list(recorded.values())
        print(f"recorded {len(recorded)} processes of the demo:", *sorted(labels), sep="\n  ")
        namespaces = _namespaces(prefix)

        def count(start: str, inside: str = "") -> int:
            return sum(label.startswith(start) and inside in label for label in labels)

        # Everything the test is about is there and alive right before the kill.
        assert namespaces, "the demo made no namespace"
        assert count("cluster pids/server.pid") == 1, labels
        assert count("cluster pids/redis.pid") == 1, labels  # the demo's own broker
        assert count("cluster pids/controller.pid") == 1, labels
        assert count("cluster pids/agent-") == 4, labels
        # pool children of the controller (-c 2) and its embedded beat; agents' pools
        assert count("child of", "(cluster pids/controller.pid)") >= 3, labels
        assert count("child of", "(cluster pids/agent-") >= 4, labels
        assert count("agent daemon ") >= 1, labels  # managed dnsmasq
        assert count("simulator pids/guest-") >= 1, labels  # VM guests
        assert count("in netns ") >= 1, labels
        # The launcher's tree: what carries its marker (one-shot commands do not, and
        # daemons and guests left the tree: they are for clean).
        own = [
            i
            for i, label in recorded.items()
            if "cluster pids/" in label and started_by(i[0], run_dir)
        ]
        assert len(own) >= 6 + 3 + 4, labels  # the six above, their pools and beat
        assert _port_listened(port), f"nothing listens on the demo's port {port}"
        assert all(_alive(ident) for ident in recorded), "a recorded process already exited"

        os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(timeout=30)

        # PR_SET_PDEATHSIG: what the launcher started, and their children, die with it
        # before any clean-up runs.
        deadline = time.monotonic() + 30
        while any(_alive(i) for i in own) and time.monotonic() < deadline:
            time.sleep(0.2)
        outlived = [recorded[i] for i in own if _alive(i)]
        assert outlived == [], f"outlived the launcher's SIGKILL: {outlived}"

        done = clean_demo(name, env)
        assert done.returncode == 0, done.stderr

        assert _namespaces(prefix) == []
        left = [label for ident, label in recorded.items() if _alive(ident)]
        assert left == [], f"still running after clean: {left}"
        strays = [f"{pid}: {_describe(pid)}" for pid in marked(run_dir)]
        assert strays == [], f"processes of the demo nobody recorded: {strays}"
        assert not _port_listened(port), f"port {port} still listened on"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=30)
        clean_demo(name, env)
