"""VLAN ranges per physnet and allocation of the lowest free VLAN."""

from django.conf import settings

from ciaoweb.core.allocation import first_free_integer
from ciaoweb.core.exceptions import NoCapacity
from ciaoweb.networks.choices import NetworkKind
from ciaoweb.networks.models import VLAN_MAX, VLAN_MIN, Network


def _parse_range(text: str) -> tuple[int, int]:
    low, high = (int(part) for part in text.split(":"))
    if not VLAN_MIN <= low <= high <= VLAN_MAX:
        raise ValueError(f"bad VLAN range {text!r}: need {VLAN_MIN} <= low <= high <= {VLAN_MAX}")
    return low, high


def parse_vlan_ranges(spec: str) -> dict[str, tuple[int, int]]:
    """`"physnet1:100:199,physnet2:200:299"` -> {"physnet1": (100, 199), ...}."""
    ranges = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        physnet, _, bounds = item.partition(":")
        ranges[physnet] = _parse_range(bounds)
    return ranges


def vlan_range_for(physnet: str) -> tuple[int, int]:
    ranges = parse_vlan_ranges(settings.CIAO_VLAN_RANGES)
    return ranges.get(physnet) or _parse_range(settings.CIAO_VLAN_DEFAULT_RANGE)


def next_free_vlan(physnet: str) -> int:
    """Lowest VLAN of the physnet's range no SR-IOV network uses. The unique constraint on
    (physnet, vlan) catches a concurrent request that picked the same one; the caller
    retries (see services.create_network)."""
    low, high = vlan_range_for(physnet)
    taken = Network.objects.filter(kind=NetworkKind.SRIOV, physnet=physnet)
    vlan = first_free_integer(taken, "vlan", low, high)
    if vlan is None:
        raise NoCapacity(f"no free VLAN left in {low}-{high} on physnet {physnet}")
    return vlan
