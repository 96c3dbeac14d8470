"""Packet-level helpers for simulator tests (argument lists, no shell)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from simulator import Simulator, netns

RECEIVER = r"""
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
total, first, last = 0, None, None
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    now = time.monotonic()
    first = first or now
    last = now
    total += len(b)
print(total, (last or 0) - (first or 0), flush=True)
"""

SENDER = r"""
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
buf = b"x" * 65536
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    c.sendall(buf)
c.close()
"""


def sh(netns_name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", netns_name, *args], capture_output=True, text=True, check=check
    )


def ping(netns_name: str, ip: str, count: int = 2, wait: float = 1.0) -> bool:
    proc = sh(netns_name, "ping", "-c", str(count), "-W", str(wait), "-i", "0.2", ip, check=False)
    return proc.returncode == 0


def link_show(netns_name: str, ifname: str) -> str:
    """`ip -o link show` of one link in a namespace (its flags, master, MAC...)."""
    argv = ["ip", "-n", netns_name, "-o", "link", "show", ifname]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def flush_neigh(*namespaces: str) -> None:
    for ns in namespaces:
        subprocess.run(["ip", "-n", ns, "neigh", "flush", "all"], check=False)


def add_addr(netns_name: str, ifname: str, cidr: str) -> None:
    subprocess.run(["ip", "-n", netns_name, "addr", "add", cidr, "dev", ifname], check=True)


def attach(
    sim: Simulator,
    host: str,
    pf: str,
    index: int,
    inst: str,
    *,
    mac: str,
    vlan: int,
    cidr: str | None = None,
    kind: str = "container",
    **knobs,
) -> str:
    """Instance + VF (mac, vlan, knobs) plugged as eth0 (+ an address): its netns."""
    ns = sim.create_instance(host, inst, kind)
    sim.set_vf(host, pf, index, mac=mac, vlan=vlan, **knobs)
    sim.plug_vf(host, pf, index, ns, "eth0")
    if cidr:
        add_addr(ns, "eth0", cidr)
    return ns


def measure_mbit(src_ns: str, dst_ns: str, dst_ip: str, seconds: float = 3.0) -> float:
    """Real TCP transfer src -> dst; the receiver's bytes over its own receive time."""
    port = "5201"
    recv = subprocess.Popen(
        ["ip", "netns", "exec", dst_ns, sys.executable, "-c", RECEIVER, dst_ip, port],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert recv.stdout is not None
        assert recv.stdout.readline().strip() == "ready"
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                src_ns,
                sys.executable,
                "-c",
                SENDER,
                dst_ip,
                port,
                str(seconds),
            ],
            check=True,
            timeout=seconds + 30,
        )
        total, duration = recv.stdout.readline().split()
        recv.wait(timeout=10)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait()
    return int(total) * 8 / float(duration) / 1e6


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if text in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found.append(int(entry))
    return found


def leftovers(name: str, state_dir: Path) -> dict:
    """Everything of simulator ``name`` still present: must be {} after down/clean."""
    prefix = f"ciao-{name}-"
    result: dict = {}
    spaces = netns.list_prefixed(prefix)
    if spaces:
        result["netns"] = spaces
    inside = [p for pids in netns.pids_by_ns(spaces).values() for p in pids]
    procs = sorted(set(processes_mentioning(str(state_dir)) + inside))
    if procs:
        result["processes"] = procs
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    root_links = [line for line in links.splitlines() if name in line]
    if root_links:
        result["root_links"] = root_links
    if state_dir.exists():
        result["state_dir"] = str(state_dir)
    return result
