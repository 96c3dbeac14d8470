"""Every name the simulator gives to a namespace, link, file or process.

Cleanup relies on these being predictable: all namespaces start with
``ciao-<sim>-`` and a simulator name never contains ``-``, so the prefix of one
simulator never matches another's.  Link names live inside our namespaces and
must fit IFNAMSIZ (15 characters).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InvalidArgument

PREFIX = "ciao"
IFNAMSIZ = 15

SIM_NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
PF_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,8}$")
PHYSNET_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")
RESERVED_HOSTS = {"fab"}
RESERVED_HOST_PREFIXES = ("i-", "u-")

MGMT_BRIDGE = "mgmt"
MGMT_IFNAME = "mgmt0"
MGMT_NET = "10.250.0"
UNDERLAY_IFNAME = "eth0"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def base_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding one state dir per simulator (``$CIAO_SIM_DIR``)."""
    if override is not None:
        return Path(override)
    return Path(os.environ.get("CIAO_SIM_DIR") or repo_root() / "var" / "sim")


def check_sim_name(name: str) -> str:
    if not SIM_NAME_RE.match(name):
        raise InvalidArgument(f"simulator name {name!r} must match {SIM_NAME_RE.pattern}")
    return name


def check_label(kind: str, name: str) -> str:
    if not LABEL_RE.match(name):
        raise InvalidArgument(f"{kind} name {name!r} must be a DNS label")
    return name


def ns_prefix(sim: str) -> str:
    return f"{PREFIX}-{sim}-"


def fabric_ns(sim: str) -> str:
    return f"{PREFIX}-{sim}-fab"


def host_ns(sim: str, host: str) -> str:
    return f"{PREFIX}-{sim}-{host}"


def instance_ns(sim: str, instance: str) -> str:
    return f"{PREFIX}-{sim}-i-{instance}"


def underlay_ns(sim: str, physnet: str, vlan: int) -> str:
    return f"{PREFIX}-{sim}-u-{physnet.replace('_', '-')}-{vlan}"


# --- links in the fabric namespace -------------------------------------------------


def fabric_bridge(physnet_index: int, vlan: int) -> str:
    return f"p{physnet_index}v{vlan}"


def fabric_uplink_port(host_index: int, pf_index: int, vlan: int) -> str:
    return f"h{host_index}p{pf_index}v{vlan}"


def fabric_mgmt_port(host_index: int) -> str:
    return f"m{host_index}"


def fabric_underlay_port(physnet_index: int, vlan: int) -> str:
    return f"d{physnet_index}v{vlan}"


# --- links in a host namespace -----------------------------------------------------


def eswitch_bridge(pf: str, vlan: int) -> str:
    """VLAN 0 (untagged) bridge carries the PF's own name: it is the PF netdev."""
    return pf if vlan == 0 else f"{pf}b{vlan}"


def eswitch_uplink(pf: str, vlan: int) -> str:
    return f"{pf}u{vlan}"


def vf_netdev(pf: str, index: int) -> str:
    return f"{pf}v{index}"


def vf_representor(pf: str, index: int) -> str:
    return f"{pf}r{index}"


def pci_address(pf_index: int, vf_index: int | None = None) -> str:
    """Stable fake PCI addresses: PF i on bus 0x10+4i, its VFs on the next bus."""
    bus = 0x10 + 4 * pf_index
    if vf_index is None:
        return f"0000:{bus:02x}:00.0"
    bus += 1 + vf_index // 256
    slot, fn = divmod(vf_index % 256, 8)
    return f"0000:{bus:02x}:{slot:02x}.{fn}"


def mgmt_ip(host_index: int) -> str:
    return f"{MGMT_NET}.{host_index + 1}"


def check_ifname(name: str) -> str:
    if not name or len(name) > IFNAMSIZ or "/" in name or " " in name:
        raise InvalidArgument(f"interface name {name!r} is not valid (1..15 chars)")
    return name
