"""VLAN ranges per physnet and allocation of the lowest free VLAN.

`CIAO_VLAN_RANGES` is `physnet:low:high[,physnet:low:high...]` and `CIAO_VLAN_DEFAULT_RANGE`
`low:high`, the tenant ranges automatic allocation takes VLANs from (members' networks
always get theirs this way; admins may name any VLAN). Both are checked at start-up
(`ciaoweb.networks.checks`, a Django system check: `manage.py check`, `runserver`,
`migrate`); a bad value that still reaches a request is a 409 naming the setting, never a
500. Their grammar is ciaoweb.core.envconfig's, which validates the environment too.
"""

from django.conf import settings

from ciaoweb.core.allocation import first_free_integer
from ciaoweb.core.envconfig import parse_default_range, parse_vlan_ranges
from ciaoweb.core.exceptions import Conflict, NoCapacity
from ciaoweb.networks.choices import NetworkKind
from ciaoweb.networks.models import Network

RANGES_SETTING, DEFAULT_SETTING = "CIAO_VLAN_RANGES", "CIAO_VLAN_DEFAULT_RANGE"


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
