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


FLOOD_MAC = "00:00:00:00:00:00"  # the all-zeros entry: broadcast and unknown unicast


def _flood_peers(fdb: str) -> set[str]:
    """Peers the segment floods to, from `bridge fdb show dev <vxlan>`. Only the all-zeros
    entries count: a MAC learned from a peer's traffic (`<mac> dst <peer>`) is no flood
    entry, and taking it for one left a host unable to ARP for that peer's instances."""
    peers = set()
    for line in fdb.splitlines():
        words = line.split()
        if words[:1] == [FLOOD_MAC] and "dst" in words[:-1]:
            peers.add(words[words.index("dst") + 1])
    return peers


def _ip_in(netns: str, *commands: list[str]) -> None:
    """`ip` commands in one namespace, in one process (`ip -batch`: a word with a space
    or a newline in it would be read as more than one word, so none is accepted)."""
    if any(not word or any(c.isspace() for c in word) for command in commands for word in command):
        raise RuntimeError(f"not a word for ip -batch in {commands!r}")
    batch = "".join(" ".join(command) + "\n" for command in commands)
    subprocess.run(
        ["ip", "-n", netns, "-batch", "-"], input=batch, text=True, check=True, capture_output=True
    )


class Overlay:
    def __init__(self, host_netns: str | None, local_ip: str | None) -> None:
        self.host_netns = host_netns  # None: the node's own (root) namespace
        self.local_ip = local_ip
        # vni -> peers this process has made its segment flood to. A launch into a known
        # segment skips re-checking it (~10 commands, 16 peers): a join that fails
        # because the segment went away rebuilds it and tries again.
        self._segments: dict[int, frozenset[str]] = {}

    def _ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["ip", "-n", self.host_netns] if self.host_netns else ["ip"]
        return subprocess.run([*prefix, *args], capture_output=True, text=True, check=check)

    def _bridge_cmd(self, *args: str) -> subprocess.CompletedProcess:
        prefix = ["bridge", "-n", self.host_netns] if self.host_netns else ["bridge"]
        return subprocess.run([*prefix, *args], capture_output=True, text=True)

    def _add(self, *args: str) -> bool:
        """`ip link add ...` that tolerates losing a race to a concurrent identical add
        (two workers of this node applying the same spec after a broker redelivery).
        False: the link existed already."""
        done = self._ip("link", "add", *args, check=False)
        if done.returncode != 0 and "File exists" not in done.stderr:
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr
            )
        return done.returncode == 0

    def _links(self) -> set[str]:
        """Names of the links in the host namespace, in one call."""
        listed = self._ip("-brief", "link", "show", check=False).stdout
        return {line.split()[0].split("@")[0] for line in listed.splitlines() if line.strip()}

    def ensure_segment(self, vni: int, peers: list[str]) -> str:
        """Bridge + VXLAN port for the segment, flooding to every peer; idempotent."""
        if not self.local_ip:
            raise RuntimeError("this node has no overlay tunnel address configured")
        bridge, vxlan = bridge_name(vni), vxlan_name(vni)
        links = self._links()
        if bridge not in links:
            self._add(bridge, "type", "bridge")
            self._ip("link", "set", bridge, "up")
        if vxlan not in links:
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
        flooded = _flood_peers(self._bridge_cmd("fdb", "show", "dev", vxlan).stdout)
        for peer in peers:
            if peer != self.local_ip and peer not in flooded:
                self._bridge_cmd("fdb", "append", FLOOD_MAC, "dev", vxlan, "dst", peer)
        self._segments[int(vni)] = frozenset(peers)
        return bridge

    def plug(self, attachment: dict, netns: str, address: str | None = None) -> None:
        """veth from the segment's bridge into the instance as its ifname, with its MAC
        (and `address`, "ip/prefixlen", when we are the instance's runtime)."""
        vni, peers = attachment["overlay"]["vni"], attachment["overlay"]["peers"]
        if self._segments.get(int(vni)) != frozenset(peers):
            self.ensure_segment(vni, peers)
        try:
            self._join(bridge_name(vni), attachment, netns, address)
        except subprocess.CalledProcessError:
            self._segments.pop(int(vni), None)
            self.ensure_segment(vni, peers)
            self._join(bridge_name(vni), attachment, netns, address)

    def _join(self, bridge: str, attachment: dict, netns: str, address: str | None) -> None:
        """One request makes the pair: the port on the bridge and up, the peer in the
        instance with its name, MAC and MTU; one more sets its address and brings it up
        (four commands before: each `ip` costs about 3 ms of CPU a launch)."""
        port, ifname = port_name(attachment["attachment_id"]), attachment["ifname"]
        own = ["address", attachment["mac"]]
        if attachment.get("mtu"):
            own += ["mtu", str(attachment["mtu"])]
        peer = ["name", ifname, "netns", netns, *own]
        if not self._add(port, "master", bridge, "up", "type", "veth", "peer", *peer):
            # made before (a redelivered spec, or a set-up cut short): set what it must have
            self._ip("link", "set", port, "master", bridge, "up")
            _ip_in(netns, ["link", "set", ifname, *own])
        commands = [["link", "set", ifname, "up"]]
        if address:
            commands.insert(0, ["addr", "replace", address, "dev", ifname])
        _ip_in(netns, *commands)

    def unplug(self, attachment: dict) -> None:
        """Remove the veth (gone already if the instance namespace was deleted)."""
        self._ip("link", "del", port_name(attachment["attachment_id"]), check=False)
