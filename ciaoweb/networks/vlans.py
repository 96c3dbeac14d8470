"""VLAN ranges per physnet and allocation of the lowest free VLAN.

`CIAO_VLAN_RANGES` is `physnet:low:high[,physnet:low:high...]` and `CIAO_VLAN_DEFAULT_RANGE`
`low:high`, the tenant ranges automatic allocation takes VLANs from (members' networks
always get theirs this way; admins may name any VLAN). Both are checked at start-up
(`ciaoweb.networks.checks`, a Django system check: `manage.py check`, `runserver`,
`migrate`); a bad value that still reaches a request is a 409 naming the setting, never a
500.
"""

from django.conf import settings

from ciaoweb.core.allocation import first_free_integer
from ciaoweb.core.exceptions import Conflict, NoCapacity
from ciaoweb.networks.choices import NetworkKind
from ciaoweb.networks.models import VLAN_MAX, VLAN_MIN, Network

RANGES_SETTING, DEFAULT_SETTING = "CIAO_VLAN_RANGES", "CIAO_VLAN_DEFAULT_RANGE"


def _parse_range(text: str) -> tuple[int, int]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"bad VLAN range {text!r}: write it low:high, e.g. 100:199")
    low, high = (int(part) for part in parts)
    if not VLAN_MIN <= low <= high <= VLAN_MAX:
        raise ValueError(f"bad VLAN range {text!r}: need {VLAN_MIN} <= low <= high <= {VLAN_MAX}")
    return low, high


def parse_vlan_ranges(spec: str) -> dict[str, tuple[int, int]]:
    """`"physnet1:100:199,physnet2:200:299"` -> {"physnet1": (100, 199), ...}; raises
    ValueError naming the bad item."""
    if not isinstance(spec, str):
        raise ValueError(f"must be a string like physnet1:100:199, not {type(spec).__name__}")
    ranges: dict[str, tuple[int, int]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        physnet, _, bounds = item.partition(":")
        physnet = physnet.strip()
        if not physnet or not bounds:
            raise ValueError(f"bad item {item!r}: write it physnet:low:high, e.g. physnet1:100:199")
        if physnet in ranges:
            raise ValueError(f"bad item {item!r}: physnet {physnet} is listed twice")
        try:
            ranges[physnet] = _parse_range(bounds)
        except ValueError as exc:
            raise ValueError(f"bad item {item!r}: {exc}") from None
    return ranges


def parse_default_range(text: str) -> tuple[int, int]:
    if not isinstance(text, str):
        raise ValueError(f"must be a string like 100:3999, not {type(text).__name__}")
    return _parse_range(text.strip())


def configuration_problems() -> list[tuple[str, str]]:
    """[(setting, message)] for each VLAN range setting that does not parse."""
    problems = []
    for name, parse in (
        (RANGES_SETTING, parse_vlan_ranges),
        (DEFAULT_SETTING, parse_default_range),
    ):
        try:
            parse(getattr(settings, name, ""))
        except ValueError as exc:
            problems.append((name, str(exc)))
    return problems


def vlan_range_for(physnet: str) -> tuple[int, int]:
    """The physnet's tenant range; a misconfigured setting is a Conflict (409) naming it."""
    try:
        ranges = parse_vlan_ranges(settings.CIAO_VLAN_RANGES)
        if physnet in ranges:
            return ranges[physnet]
        return parse_default_range(settings.CIAO_VLAN_DEFAULT_RANGE)
    except ValueError:
        problems = "; ".join(f"{name}: {message}" for name, message in configuration_problems())
        raise Conflict(
            f"no VLAN can be allocated: the cluster's VLAN ranges are misconfigured ({problems}); "
            "an administrator must fix the setting"
        ) from None


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
