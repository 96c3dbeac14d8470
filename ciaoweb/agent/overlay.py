"""The primary overlay network (eth0): one VXLAN segment per tenant across hosts.

On each host a segment is a bridge `ov<vni>` with a VXLAN port `vx<vni>` that floods
broadcast/unknown traffic to every other host's tunnel endpoint (head-end replication)
and learns unicast MACs. An instance joins with a veth pair: `o<id>` on the bridge,
`eth0` in the instance namespace.
"""

from __future__ import annotations

import hashlib
import subprocess

VXLAN_PORT = "4789"


def bridge_name(vni: int) -> str:
    return f"ov{int(vni)}"


def vxlan_name(vni: int) -> str:
    return f"vx{int(vni)}"


def port_name(attachment_id: str) -> str:
    """Host-side veth name: stable per attachment, within IFNAMSIZ."""
    return "o" + hashlib.sha1(str(attachment_id).encode()).hexdigest()[:12]


class Overlay:
    def __init__(self, host_netns: str | None, local_ip: str | None) -> None:
        self.host_netns = host_netns  # None: the node's own (root) namespace
        self.local_ip = local_ip

    def _ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["ip", "-n", self.host_netns] if self.host_netns else ["ip"]
        return subprocess.run([*prefix, *args], capture_output=True, text=True, check=check)

    def _bridge_cmd(self, *args: str) -> subprocess.CompletedProcess:
        prefix = ["ip", "netns", "exec", self.host_netns] if self.host_netns else []
        return subprocess.run([*prefix, "bridge", *args], capture_output=True, text=True)

    def _add(self, *args: str) -> None:
        """`ip link add ...` that tolerates losing a race to a concurrent identical add
        (two workers of this node applying the same spec after a broker redelivery)."""
        done = self._ip("link", "add", *args, check=False)
        if done.returncode != 0 and "File exists" not in done.stderr:
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr
            )

    def _exists(self, name: str) -> bool:
        return self._ip("link", "show", "dev", name, check=False).returncode == 0

    def ensure_segment(self, vni: int, peers: list[str]) -> str:
        """Bridge + VXLAN port for the segment, flooding to every peer; idempotent."""
        if not self.local_ip:
            raise RuntimeError("this node has no overlay tunnel address configured")
        bridge, vxlan = bridge_name(vni), vxlan_name(vni)
        if not self._exists(bridge):
            self._add(bridge, "type", "bridge")
            self._ip("link", "set", bridge, "up")
        if not self._exists(vxlan):
            self._add(
                vxlan,
                "type",
                "vxlan",
                "id",
                str(int(vni)),
                "local",
                self.local_ip,
                "dstport",
                VXLAN_PORT,
            )
            self._ip("link", "set", vxlan, "master", bridge)
            self._ip("link", "set", vxlan, "up")
        known = self._bridge_cmd("fdb", "show", "dev", vxlan).stdout
        for peer in peers:
            if peer != self.local_ip and f"dst {peer} " not in known + " ":
                self._bridge_cmd("fdb", "append", "00:00:00:00:00:00", "dev", vxlan, "dst", peer)
        return bridge

    def plug(self, attachment: dict, netns: str) -> None:
        """veth from the segment's bridge into the instance as its ifname, with its MAC."""
        overlay = attachment["overlay"]
        bridge = self.ensure_segment(overlay["vni"], overlay["peers"])
        port, ifname = port_name(attachment["attachment_id"]), attachment["ifname"]
        if not self._exists(port):
            self._add(port, "type", "veth", "peer", "name", ifname, "netns", netns)
        self._ip("link", "set", port, "master", bridge)
        self._ip("link", "set", port, "up")
        inside = ["ip", "-n", netns, "link", "set", ifname]
        subprocess.run([*inside, "address", attachment["mac"]], check=True, capture_output=True)
        if attachment.get("mtu"):
            subprocess.run(
                [*inside, "mtu", str(attachment["mtu"])], check=True, capture_output=True
            )
        subprocess.run([*inside, "up"], check=True, capture_output=True)

    def unplug(self, attachment: dict) -> None:
        """Remove the veth (gone already if the instance namespace was deleted)."""
        self._ip("link", "del", port_name(attachment["attachment_id"]), check=False)
