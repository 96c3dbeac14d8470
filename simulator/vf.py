"""A VF: a veth pair in the host namespace, the VF netdev and its representor.

The representor is a port of the eswitch bridge of the VF's VLAN.  Every knob is
applied on the datapath:

- mac          the VF netdev's address (wherever the netdev currently lives)
- vlan         the representor is re-mastered onto that VLAN's eswitch bridge
- spoofchk     nft (bridge family, host namespace) drops frames entering from the
               representor whose source MAC is not the VF's MAC ...
- trust        ... unless the VF is trusted (the guest may use any MAC)
- link_state   disable = representor down (no carrier on the VF); auto/enable = up
- max_tx_rate  tbf on the VF netdev's egress (= the VF's transmit), Mbit/s; 0 = off
"""

from __future__ import annotations

import random

from . import names
from .cmd import Batch, ip, nft, tc

ZERO_MAC = "00:00:00:00:00:00"
LINK_STATES = ("auto", "enable", "disable")

NFT_TABLE = """\
table bridge ciao {
  set spoofchk { type ifname; }
  set allowed { type ifname . ether_addr; }
  chain prerouting {
    type filter hook prerouting priority 0; policy accept;
    iifname @spoofchk iifname . ether saddr != @allowed counter drop
  }
}
"""


def default_config() -> dict:
    """What a fresh VF looks like after `echo N > sriov_numvfs`."""
    return {
        "mac": ZERO_MAC,
        "vlan": 0,
        "spoofchk": True,
        "trust": False,
        "link_state": "auto",
        "max_tx_rate": 0,
        "netns": None,
        "ifname": None,
    }


def random_mac() -> str:
    octets = [0x02] + [random.randint(0, 255) for _ in range(5)]
    return ":".join(f"{o:02x}" for o in octets)


def create_pair(batch: Batch, host_netns: str, pf: str, index: int, vlan: int) -> None:
    vf, rep = names.vf_netdev(pf, index), names.vf_representor(pf, index)
    batch.add(
        host_netns,
        f"link add {vf} type veth peer name {rep}",
        f"link set {rep} master {names.eswitch_bridge(pf, vlan)} up",
    )


def delete_pair(batch: Batch, host_netns: str, pf: str, index: int) -> None:
    # deleting one end of a veth deletes both, wherever the VF netdev lives
    batch.add(host_netns, f"link del {names.vf_representor(pf, index)}")


def spoof_entry(rep: str, cfg: dict) -> tuple[str, str] | None:
    """The (representor, allowed MAC) filter entry a config implies, or None."""
    if cfg["spoofchk"] and not cfg["trust"] and cfg["mac"] != ZERO_MAC:
        return (rep, cfg["mac"])
    return None


def spoof_update(host_netns: str, old: tuple[str, str] | None, new: tuple[str, str] | None):
    if old == new:
        return
    lines = []
    if old is not None:
        lines += [
            f'delete element bridge ciao spoofchk {{ "{old[0]}" }}',
            f'delete element bridge ciao allowed {{ "{old[0]}" . {old[1]} }}',
        ]
    if new is not None:
        lines += [
            f'add element bridge ciao allowed {{ "{new[0]}" . {new[1]} }}',
            f'add element bridge ciao spoofchk {{ "{new[0]}" }}',
        ]
    nft(host_netns, "\n".join(lines) + "\n")


def set_mac(netns: str, ifname: str, mac: str) -> None:
    ip(netns, "link", "set", "dev", ifname, "address", mac if mac != ZERO_MAC else random_mac())


def set_master(host_netns: str, rep: str, bridge: str) -> None:
    ip(host_netns, "link", "set", "dev", rep, "master", bridge)


def set_link_state(host_netns: str, rep: str, link_state: str) -> None:
    ip(host_netns, "link", "set", "dev", rep, "down" if link_state == "disable" else "up")


def set_rate(netns: str, ifname: str, mbit: int) -> None:
    """Shape the VF's transmit: tbf on the VF netdev (0 removes it)."""
    if mbit <= 0:
        tc(netns, "qdisc", "del", "dev", ifname, "root", check=False)
        return
    rate_bytes = mbit * 125_000
    burst = max(rate_bytes // 250, 16 * 1024)  # >= rate/HZ, a few MTUs at least
    tc(
        netns,
        "qdisc",
        "replace",
        "dev",
        ifname,
        "root",
        "tbf",
        "rate",
        f"{mbit}mbit",
        "burst",
        str(burst),
        "latency",
        "50ms",
    )


def apply_all(host_netns: str, pf: str, index: int, cfg: dict) -> None:
    """(Re)apply a whole config to a freshly created pair in the host namespace."""
    vf, rep = names.vf_netdev(pf, index), names.vf_representor(pf, index)
    if cfg["mac"] != ZERO_MAC:
        set_mac(host_netns, vf, cfg["mac"])
    set_link_state(host_netns, rep, cfg["link_state"])
    if cfg["max_tx_rate"]:
        set_rate(host_netns, vf, cfg["max_tx_rate"])
