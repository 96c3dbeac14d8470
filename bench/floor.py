"""Raw floors: the kernel steps of a launch and of a migration done by a bare script on
the simulator, with no controller, broker or agent in the way.

Launch floor: set_vf(mac, vlan) + create_instance + plug_vf + udhcpc (obtain_lease, the
agent's own client) against a dnsmasq (the agent's DhcpServer, controller IPAM, the
reservation written beforehand) + one ping of the server.
Migration floor: a peer pings the instance every 10 ms; unplug on the source,
create_instance + set_vf + plug_vf on the target, udhcpc: the longest reply gap.
Hot-attach floor: set_vf + plug_vf into a running container + udhcpc + one ping.
"""

from __future__ import annotations

import ipaddress
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .cpu import CpuUse
from .e2e import Pinger, topology
from .util import summary

VLAN = 100
CIDR = "10.70.0.0/20"
SERVER_IP = "10.70.15.254"
PREFIX = 20


def _mac(n: int) -> str:
    return f"02:be:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}:01"


def _ip(n: int) -> str:
    return str(ipaddress.IPv4Address("10.70.0.10") + n)


def ping_server(netns: str, interface: str | None = None) -> None:
    """Until the server's first reply: a probe every 0.2 s for up to 3 s. One probe with a
    1 s wait failed the parallel floor once (2026-12-04): under 256 launches' DHCP
    broadcasts a first ARP can be dropped, and the kernel asks again only after 1 s."""
    ping = ["ip", "netns", "exec", netns, "ping", "-c", "1", "-i", "0.2", "-w", "3"]
    subprocess.run(
        [*ping, *(["-I", interface] if interface else []), SERVER_IP],
        check=True,
        capture_output=True,
    )


class Floor:
    def __init__(self, name: str = "benchfloor", hosts: int = 16, vfs: int = 32) -> None:
        from simulator import Simulator, Topology

        self.sim = Simulator.up(Topology.from_dict(topology(hosts, vfs)), name=name)
        self.tmp = Path(tempfile.mkdtemp(prefix="benchfloor-"))
        self.tmp.chmod(0o755)  # dnsmasq drops root to ciao-dnsmasq and must reach hosts.d
        self.hook_dir = self.tmp / "hooks"
        self.hook_dir.mkdir()
        self.next_vf: dict[str, int] = {}
        self.seq = 0
        self.server = None
        try:
            self._start_server()
        except BaseException:
            self.down()  # nothing of a floor that never started stays behind
            raise

    def _take_vf(self, host: str) -> int:
        index = self.next_vf.get(host, 0)
        self.next_vf[host] = index + 1
        return index

    def _start_server(self) -> None:
        from ciaoweb.agent.dhcp.server import DhcpServer, DhcpServerSpec

        netns = self.sim.create_instance("netnode", "floorsrv", "container")
        index = self._take_vf("netnode")
        self.sim.set_vf("netnode", "pf0", index, mac="02:be:ff:ff:ff:01", vlan=VLAN)
        self.sim.plug_vf("netnode", "pf0", index, netns, "eth0")
        subprocess.run(
            ["ip", "-n", netns, "addr", "add", f"{SERVER_IP}/{PREFIX}", "dev", "eth0"], check=True
        )
        self.server = DhcpServer(
            DhcpServerSpec(
                network_id="benchfloor",
                netns=netns,
                interface="eth0",
                cidr=CIDR,
                gateway=SERVER_IP,
                ipam="controller",
                dns_domain="floor.example",
            ),
            self.tmp,
        )
        self.server.start()

    def _reserve(self, mac: str, ip: str) -> None:
        from ciaoweb.agent.dhcp.server import Reservation

        self.server.add_reservation(Reservation(mac, ip))
        time.sleep(0.02)  # inotify pick-up, outside the timed part (the controller's job)

    def _bring_up(self, host: str, name: str, mac: str) -> tuple[str, int, dict[str, float]]:
        from ciaoweb.agent.dhcp.client import obtain_lease

        marks = {"start": time.time()}
        index = self._take_vf(host)
        netns = self.sim.create_instance(host, name, "container")
        marks["netns"] = time.time()
        self.sim.set_vf(host, "pf0", index, mac=mac, vlan=VLAN)
        marks["set_vf"] = time.time()
        self.sim.plug_vf(host, "pf0", index, netns, "eth1")
        marks["plug_vf"] = time.time()
        obtain_lease(netns, "eth1", hook_dir=self.hook_dir)
        marks["lease"] = time.time()
        return netns, index, marks

    def launch(self, count: int) -> dict[str, Any]:
        totals, to_lease, steps = (
            [],
            [],
            {"netns": [], "set_vf": [], "plug_vf": [], "dhcp": [], "ping": []},
        )
        hosts = [f"node{i}" for i in range(1, 17)]
        for n in range(count):
            self.seq += 1
            mac = _mac(self.seq)
            self._reserve(mac, _ip(self.seq))
            host = hosts[n % len(hosts)]
            netns, _, marks = self._bring_up(host, f"fl{self.seq}", mac)
            ping_server(netns)
            end = time.time()
            totals.append(end - marks["start"])
            to_lease.append(marks["lease"] - marks["start"])
            steps["netns"].append(marks["netns"] - marks["start"])
            steps["set_vf"].append(marks["set_vf"] - marks["netns"])
            steps["plug_vf"].append(marks["plug_vf"] - marks["set_vf"])
            steps["dhcp"].append(marks["lease"] - marks["plug_vf"])
            steps["ping"].append(end - marks["lease"])
        return {
            "with_ping": summary(totals),
            "to_lease": summary(to_lease),
            "steps": {k: summary(v) for k, v in steps.items()},
            "samples": totals,
        }

    def migration(self, count: int, interval: float = 0.01) -> dict[str, Any]:
        """Break before make, by hand: unplug on one host, plug on the other, DHCP."""
        self.seq += 1
        mac, ip = _mac(self.seq), _ip(self.seq)
        self._reserve(mac, ip)
        _, index, _ = self._bring_up("node1", f"flm{self.seq}", mac)
        where = {"host": "node1", "index": index, "name": f"flm{self.seq}"}
        self.seq += 1
        peer_mac = _mac(self.seq)
        self._reserve(peer_mac, _ip(self.seq))
        peer_ns, _, _ = self._bring_up("node3", f"flp{self.seq}", peer_mac)
        pinger = Pinger(peer_ns, ip, interval)
        pinger.start()
        gaps, durations = [], []
        try:
            time.sleep(0.5)
            for n in range(count):
                target = "node2" if n % 2 == 0 else "node1"
                name = f"flm{self.seq}m{n}"
                t0 = time.time()
                self.sim.unplug_vf(where["host"], "pf0", where["index"])
                _, new_index, _ = self._bring_up(target, name, mac)
                durations.append(time.time() - t0)
                time.sleep(0.5)
                gap = pinger.max_gap(t0 - 0.05, time.time())
                if gap is not None:
                    gaps.append(gap)
                self.sim.delete_instance(where["name"])
                where = {"host": target, "index": new_index, "name": name}
        finally:
            pinger.stop()
        return {"ping_gap": summary(gaps), "unplug_to_lease": summary(durations), "samples": gaps}

    def hot_attach(self, count: int, host: str = "node1") -> dict[str, Any]:
        """Hot-attach floor: into a running container namespace, set_vf + plug_vf as eth2
        + udhcpc + one ping of the server over it (the reservation written beforehand);
        unplugged between samples, untimed, so each sample plugs the VF with a new MAC."""
        from ciaoweb.agent.dhcp.client import obtain_lease

        self.seq += 1
        name = f"flh{self.seq}"
        netns = self.sim.create_instance(host, name, "container")
        index = self._take_vf(host)
        totals, to_lease = [], []
        for _ in range(count):
            self.seq += 1
            mac = _mac(self.seq)
            self._reserve(mac, _ip(self.seq))
            t0 = time.time()
            self.sim.set_vf(host, "pf0", index, mac=mac, vlan=VLAN)
            self.sim.plug_vf(host, "pf0", index, netns, "eth2")
            obtain_lease(netns, "eth2", hook_dir=self.hook_dir)
            to_lease.append(time.time() - t0)
            ping_server(netns, "eth2")
            totals.append(time.time() - t0)
            self.sim.unplug_vf(host, "pf0", index)
        self.sim.delete_instance(name)
        return {"with_ping": summary(totals), "to_lease": summary(to_lease), "samples": totals}

    def parallel_launch(self, count: int, workers: int) -> dict[str, Any]:
        """The burst's floor: `count` launches (each the launch floor's steps, with its
        ping) by `workers` processes at once, as many as the cluster's agents run side by
        side (hosts x agent concurrency), spread over the hosts as the burst is. The
        reservations are all written first (the controller's part, untimed)."""
        import multiprocessing

        hosts = [f"node{i}" for i in range(1, 17)]
        jobs = []
        for n in range(count):
            self.seq += 1
            mac, host = _mac(self.seq), hosts[n % len(hosts)]
            self._reserve(mac, _ip(self.seq))
            jobs.append((self.sim.name, host, self._take_vf(host), f"fp{self.seq}", mac))
        context = multiprocessing.get_context("fork")  # no re-import: 32 spawns took minutes
        pool = context.Pool(workers, initializer=_worker_init, initargs=(str(self.hook_dir),))
        cpu = CpuUse()
        with pool:
            t0 = time.time()
            ends = pool.map(_launch_one, jobs, chunksize=1)
            wall = time.time() - t0
        latencies = [end - start for start, end in ends]
        return {
            "count": count,
            "workers": workers,
            "all_done_s": wall,
            "throughput_per_s": count / wall,
            "launch_to_ping": summary(latencies),
            "cpu": cpu.result(count),
        }

    def down(self) -> None:
        import shutil

        if self.server is not None:
            self.server.stop()
        self.sim.down()
        shutil.rmtree(self.tmp, ignore_errors=True)


_worker: dict[str, Any] = {}


def _worker_init(hook_dir: str) -> None:
    _worker["hook_dir"] = hook_dir


def _launch_one(job: tuple[str, str, int, str, str]) -> tuple[float, float]:
    """One launch of the parallel floor, in a pool process: its start and end times."""
    from ciaoweb.agent.dhcp.client import obtain_lease
    from simulator import Simulator

    sim_name, host, index, name, mac = job
    sim = _worker.get(sim_name) or _worker.setdefault(sim_name, Simulator.load(sim_name))
    start = time.time()
    netns = sim.create_instance(host, name, "container")
    sim.set_vf(host, "pf0", index, mac=mac, vlan=VLAN)
    sim.plug_vf(host, "pf0", index, netns, "eth1")
    obtain_lease(netns, "eth1", hook_dir=_worker["hook_dir"])
    ping_server(netns)
    return start, time.time()
