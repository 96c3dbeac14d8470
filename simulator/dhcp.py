"""Underlay DHCP: the physical network's own DHCP server for one (physnet, VLAN).

A dnsmasq in its own namespace (``ciao-<sim>-u-<physnet>-<vlan>``) whose ``eth0``
is a port of the fabric bridge of that L2 domain.  It serves the first usable
address as itself and leases from the upper half of the CIDR.  It is not ours to
program: no reservations; its lease file is the only "lease source".
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from pathlib import Path

from . import names, netns
from .cmd import Batch, netns_exec
from .fabric import Fabric
from .procs import stop_pidfile
from .state import pidfile_process

LEASE_TIME = "2m"


@dataclass
class UnderlayDhcp:
    sim: str
    physnet: str
    physnet_index: int
    vlan: int
    cidr: str
    state_dir: Path
    ipv6_cidr: str = ""  # announced by router advertisements (SLAAC, A flag)

    @property
    def netns(self) -> str:
        return names.underlay_ns(self.sim, self.physnet, self.vlan)

    @property
    def key(self) -> str:
        return f"{self.physnet}-{self.vlan}"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "pids" / f"dnsmasq-underlay-{self.key}.pid"

    @property
    def leasefile(self) -> Path:
        return self.state_dir / "dhcp" / f"underlay-{self.key}.leases"

    @property
    def logfile(self) -> Path:
        return self.state_dir / "logs" / f"dnsmasq-underlay-{self.key}.log"

    def addresses(self) -> tuple[str, int, str, str]:
        """(server ip, prefixlen, range start, range end)."""
        net = ipaddress.IPv4Network(self.cidr)
        hosts = list(net.hosts())
        return str(hosts[0]), net.prefixlen, str(hosts[len(hosts) // 2]), str(hosts[-1])

    def start(self, fabric: Fabric) -> None:
        """Namespace + port on the fabric bridge (which must exist) + dnsmasq."""
        netns.create(self.netns)
        server, plen, start, end = self.addresses()
        port = names.fabric_underlay_port(self.physnet_index, self.vlan)
        batch = Batch()
        if not netns.link_exists(self.netns, names.UNDERLAY_IFNAME):
            batch.add(
                self.netns,
                f"link add {names.UNDERLAY_IFNAME} type veth peer name {port} netns {fabric.netns}",
                f"addr add {server}/{plen} dev {names.UNDERLAY_IFNAME}",
                *self._ipv6_address(),
                f"link set {names.UNDERLAY_IFNAME} up",
            )
            fabric.attach(batch, port, names.fabric_bridge(self.physnet_index, self.vlan))
            batch.run()
        if pidfile_process(self.pidfile) is not None:
            return
        self.leasefile.parent.mkdir(parents=True, exist_ok=True)
        self.leasefile.touch()
        netmask = str(ipaddress.IPv4Network(self.cidr).netmask)
        netns_exec(
            self.netns,
            "dnsmasq",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--bind-interfaces",
            f"--interface={names.UNDERLAY_IFNAME}",
            "--except-interface=lo",
            f"--dhcp-range={start},{end},{netmask},{LEASE_TIME}",
            *self._ipv6_args(),
            f"--dhcp-leasefile={self.leasefile}",
            f"--pid-file={self.pidfile}",
            "--no-ping",
            "--dhcp-authoritative",
            "--log-dhcp",
            f"--log-facility={self.logfile}",
            "--user=root",
            "--group=root",
        )
        deadline = time.monotonic() + 5
        while pidfile_process(self.pidfile) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"dnsmasq for {self.key} did not start (see {self.logfile})")
            time.sleep(0.02)

    def _ipv6_address(self) -> list[str]:
        """The router's address `<prefix>::1` (nodad: usable at once)."""
        if not self.ipv6_cidr:
            return []
        net6 = ipaddress.IPv6Network(self.ipv6_cidr)
        return [f"addr add {net6.network_address + 1}/64 dev {names.UNDERLAY_IFNAME} nodad"]

    def _ipv6_args(self) -> list[str]:
        """The physical network's router: announces the /64 for SLAAC, no DHCPv6."""
        if not self.ipv6_cidr:
            return []
        net6 = ipaddress.IPv6Network(self.ipv6_cidr)
        return [f"--dhcp-range={net6.network_address},ra-only,64,{LEASE_TIME}", "--enable-ra"]

    def stop(self) -> None:
        stop_pidfile(self.pidfile)
        netns.delete(self.netns)

    def leases(self) -> list[dict]:
        """Parse dnsmasq's lease file: [{expires, mac, ip, hostname}]."""
        result = []
        try:
            text = self.leasefile.read_text()
        except FileNotFoundError:
            return result
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 4:
                result.append(
                    {
                        "expires": int(parts[0]),
                        "mac": parts[1],
                        "ip": parts[2],
                        "hostname": None if parts[3] == "*" else parts[3],
                    }
                )
        return result
