"""The hosts of a `CIAO_NODES=qemu` cluster: one QEMU guest per host, each with an igb
PF per physnet, and the host's agent running inside it with `--driver sriov` against the
guest's real kernel (igb/igbvf).

Wiring (each wire one emulated L2 segment carrying the NICs' 802.1Q tags):
- a wire per physnet and a "tunnel" wire, star-shaped: the network node's QEMU is the
  switch (one hub per wire: its own NIC and a `-netdev dgram` port per other guest), as
  a top-of-rack switch would be. Every compute host reaches the DHCP servers of the
  network node over its PF, and the other compute hosts through the same hub;
- "tunnel": a virtio NIC `ciao-tun` per guest, 10.99.0.<index>/24, the VXLAN underlay
  of the tenants' overlay networks (eth0);
- management: QEMU user networking; 10.0.2.2 in a guest is the host's loopback, where
  the cluster's Redis listens: the agents' broker.

The operator's part is done here as an operator would: PFs up, VFs created (unbound,
`sriov_drivers_autoprobe=0`, which the driver binds after programming them), an agent
config file per host, and the underlay's own DHCP server on a VF the agent is told to
leave alone (`exclude_devices`).
"""

from __future__ import annotations

import ipaddress
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .assets import REPO
from .guest import Guest, GuestSpec, PfSpec, Wire
from .qga import QgaError

BROKER_HOST = "10.0.2.2"  # the host's loopback, seen from a guest's user networking
TUNNEL = "10.99.0.{}/24"
# The agent's state: the guest's own tmpfs (locks and renames that 9p does not do well).
GUEST_STATE_DIR = "/run/ciao-agent"
GUEST_MEMORY_MIB = 512
UNDERLAY_SERVER_VF = 6  # igb's last VF (7 per PF) on the network node


def qemu_topology() -> dict[str, Any]:
    """Two compute hosts and a network node, each with pf0 on physnet1 and pf1 on
    physnet2; `vfs` is how many VFs the operator creates (igb has 7). The underlay on
    physnet2 VLAN 300 has its DHCP server on the network node's pf1 VF 6."""

    def pfs(vfs: int) -> list[dict[str, Any]]:
        return [
            {"name": "pf0", "physnet": "physnet1", "vfs": vfs},
            {"name": "pf1", "physnet": "physnet2", "vfs": vfs},
        ]

    return {
        "physnets": ["physnet1", "physnet2"],
        "hosts": [
            {"name": "node1", "pfs": pfs(7)},
            {"name": "node2", "pfs": pfs(7)},
            {"name": "netnode", "network_node": True, "pfs": pfs(7)},
        ],
        "underlays": [{"physnet": "physnet2", "vlan": 300, "cidr": "192.168.30.0/24"}],
    }


@dataclass
class QemuHost:
    name: str
    index: int
    network_node: bool
    pfs: list[dict[str, Any]]
    guest: Guest
    share: Path

    @property
    def tunnel_ip(self) -> str:
        return TUNNEL.format(self.index).split("/")[0]

    def run(self, argv: list[str], input: bytes | None = None, timeout: float = 60.0) -> str:  # noqa: A002
        """Run argv in the guest; its stdout, or QgaError naming the command."""
        return self.guest.exec(argv, input=input, timeout=timeout).check(argv).stdout

    def write(self, path: str, value: str) -> None:
        self.run(["tee", path], input=value.encode())


class QemuNodes:
    """Boots, prepares and stops the guests; says how to reach into each one."""

    def __init__(self, cluster_name: str, run_dir: Path, topology: dict[str, Any]) -> None:
        self.cluster_name = cluster_name
        self.run_dir = run_dir
        self.topology = topology
        self.hosts: dict[str, QemuHost] = {}
        self.boot_seconds: dict[str, float] = {}
        hub = next((h["name"] for h in topology["hosts"] if h.get("network_node")), None)
        hub = hub or topology["hosts"][0]["name"]
        wires = [*topology["physnets"], "tunnel"]
        ends: dict[str, dict[str, list[Wire]]] = {h["name"]: {} for h in topology["hosts"]}
        for wire in wires:
            for host in topology["hosts"]:
                if host["name"] == hub:
                    continue
                a = run_dir / "wires" / f"{wire}-{hub}-{host['name']}.sock"
                b = run_dir / "wires" / f"{wire}-{host['name']}.sock"
                ends[hub].setdefault(wire, []).append(Wire(a, b))
                ends[host["name"]].setdefault(wire, []).append(Wire(b, a))
        for index, host in enumerate(topology["hosts"], start=1):
            name = host["name"]
            share = run_dir / "nodes" / name
            spec = GuestSpec(
                f"ciao-{cluster_name}-{name}"[:31],
                pfs=[PfSpec(pf["name"], pf["physnet"]) for pf in host["pfs"]],
                index=index,
                memory_mib=GUEST_MEMORY_MIB,
                share=share,
                tunnel=TUNNEL.format(index),
            )
            guest = Guest(spec, run_dir / "qemu" / name, wires=ends[name])
            self.hosts[name] = QemuHost(
                name, index, bool(host.get("network_node")), host["pfs"], guest, share
            )

    # --- what the cluster asks ------------------------------------------------------

    def names(self) -> list[str]:
        return list(self.hosts)

    def is_network_node(self, host: str) -> bool:
        return self.hosts[host].network_node

    def exec_prefix(self, host: str) -> list[str]:
        return self.hosts[host].guest.exec_prefix

    def credential_path(self, host: str) -> Path:
        return self.hosts[host].share / "credential.json"

    def agent_argv(self, host: str, flags: list[str], broker_port: int) -> list[str]:
        """The host-side process that runs the agent in the guest and lives as long (its
        exit is the agent's): exec through qemu-ga, the agent's output to the share."""
        node = self.hosts[host]
        config = node.share / "agent.yaml"
        config.write_text(yaml.safe_dump(self._agent_config(node)))
        inner = [
            "env",
            "-C",
            str(REPO),
            sys.executable,
            "-m",
            "ciaoweb.localcluster.qemu",
            "log-to",
            str(node.share / "agent.log"),
            "--",
            sys.executable,
            "-m",
            "ciaoweb.agent",
            "--driver",
            "sriov",
            "--config",
            str(config),
            "--broker",
            f"redis://{BROKER_HOST}:{broker_port}/0",
            "--credential-file",
            str(self.credential_path(host)),
            "--state-dir",
            GUEST_STATE_DIR,
            *flags,
        ]
        watch = node.guest.exec_command(
            timeout=10 * 365 * 86400, poll=1.0, env={"PYTHONUNBUFFERED": "1"}
        )
        return [*watch, *inner]

    def agent_log(self, host: str) -> Path:
        return self.hosts[host].share / "agent.log"

    # --- lifecycle ------------------------------------------------------------------

    def up(self, progress=print) -> None:
        """Start every QEMU (from this thread: PR_SET_PDEATHSIG follows the thread that
        forked), wait for their guest agents together, then prepare each host."""
        for node in self.hosts.values():
            node.share.mkdir(parents=True, exist_ok=True)
            node.guest.start(wait=False)
        with ThreadPoolExecutor(max_workers=len(self.hosts)) as pool:
            booted = pool.map(lambda n: (n.name, n.guest.wait_ready()), self.hosts.values())
            self.boot_seconds = dict(booted)
        progress("      booted " + ", ".join(f"{h} {s:.1f}s" for h, s in self.boot_seconds.items()))
        with ThreadPoolExecutor(max_workers=len(self.hosts)) as pool:
            list(pool.map(self._prepare, self.hosts.values()))

    def _prepare(self, node: QemuHost) -> None:
        """The operator's part: PFs up, VFs created unbound, the underlay's server."""
        for pf in node.pfs:
            device = f"/sys/class/net/{pf['name']}/device"
            node.run(["ip", "link", "set", pf["name"], "up"])
            node.write(f"{device}/sriov_drivers_autoprobe", "0")
            node.write(f"{device}/sriov_numvfs", str(pf["vfs"]))
        if node.network_node:
            for underlay in self.topology.get("underlays", []):
                self._underlay_server(node, underlay)

    def _underlay_pf(self, node: QemuHost, physnet: str) -> str:
        return next(pf["name"] for pf in node.pfs if pf["physnet"] == physnet)

    def _underlay_server(self, node: QemuHost, underlay: dict[str, Any]) -> None:
        """The underlay network's own DHCP server (not ours: the campus network's), on a
        VF of the network node that the agent excludes, tagged with the underlay VLAN."""
        pf = self._underlay_pf(node, underlay["physnet"])
        vf = UNDERLAY_SERVER_VF
        net = ipaddress.ip_network(underlay["cidr"])
        hosts = list(net.hosts())
        netns = f"ciao-{self.cluster_name}-underlay{underlay['vlan']}"
        mac = f"52:54:00:c2:{node.index:02x}:{underlay['vlan'] % 256:02x}"
        node.run(
            ["ip", "link", "set", pf, "vf", str(vf), "vlan", str(underlay["vlan"]), "mac", mac]
        )
        pci = (
            node.run(["readlink", f"/sys/class/net/{pf}/device/virtfn{vf}"])
            .strip()
            .rsplit("/", 1)[-1]
        )
        node.write(f"/sys/bus/pci/devices/{pci}/driver_override", "igbvf")
        node.write("/sys/bus/pci/drivers/igbvf/bind", pci)
        netdev = self._wait_vf_netdev(node, pci)
        node.run(["ip", "netns", "add", netns])
        node.run(["ip", "link", "set", netdev, "netns", netns, "name", "eth0"])
        address = f"{hosts[0]}/{net.prefixlen}"
        node.run(["ip", "-n", netns, "addr", "add", address, "dev", "eth0"])
        node.run(["ip", "-n", netns, "link", "set", "lo", "up"])
        node.run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        state = f"{GUEST_STATE_DIR}-underlay{underlay['vlan']}"
        node.run(["mkdir", "-p", state])
        node.run(
            [
                "ip",
                "netns",
                "exec",
                netns,
                "dnsmasq",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--interface=eth0",
                "--except-interface=lo",
                "--no-ping",
                f"--dhcp-range={hosts[9]},{hosts[-1]},{net.netmask},1h",
                f"--dhcp-leasefile={state}/leases",
                f"--pid-file={state}/dnsmasq.pid",
            ]
        )

    @staticmethod
    def _wait_vf_netdev(node: QemuHost, pci: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = node.guest.exec(["ls", f"/sys/bus/pci/devices/{pci}/net"])
            if found.returncode == 0 and found.stdout.split():
                return found.stdout.split()[0]
            if time.monotonic() > deadline:
                raise QgaError(f"{node.name}: VF {pci} has no netdev after {timeout} s")
            time.sleep(0.2)

    def _agent_config(self, node: QemuHost) -> dict[str, Any]:
        mappings: dict[str, list[str]] = {}
        for pf in node.pfs:
            mappings.setdefault(pf["physnet"], []).append(pf["name"])
        exclude: dict[str, list[int]] = {}
        if node.network_node:
            for underlay in self.topology.get("underlays", []):
                pf = self._underlay_pf(node, underlay["physnet"])
                exclude.setdefault(pf, []).append(UNDERLAY_SERVER_VF)
        return {
            "physical_device_mappings": mappings,
            "exclude_devices": exclude,
            "overlay_local_ip": node.tunnel_ip,
            "vm_guests": True,
            # TCG guests on a shared 2-core machine: a DORA across two guests can take
            # several seconds when the machine is busy.
            "dhcp_tries": 15,
        }

    def down(self) -> None:
        """Power every guest off (what runs inside goes with it)."""
        with ThreadPoolExecutor(max_workers=max(1, len(self.hosts))) as pool:
            list(pool.map(lambda n: n.guest.stop(), self.hosts.values()))
