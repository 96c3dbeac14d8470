import pytest

from ciaoweb.core.allocation import first_free_integer
from ciaoweb.instances.macs import random_mac
from ciaoweb.inventory.models import Host
from ciaoweb.networks.models import Network
from ciaoweb.networks.vlans import parse_vlan_ranges, vlan_range_for


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("taken", "low", "high", "expected"),
    [
        ([], 10, 20, 10),
        ([10, 11, 12], 10, 20, 13),
        ([10, 12], 10, 20, 11),
        ([11, 12], 10, 20, 10),
        ([10, 11], 10, 11, None),
        ([5, 6, 7], 6, 9, 8),
    ],
)
def test_first_free_integer(taken, low, high, expected):
    # Host.last_seen is unrelated; any integer column works. Use Network.vlan.
    for vlan in taken:
        Network.objects.create(
            name=f"n{vlan}", kind="sriov", physnet="p", vlan=vlan, cidr="10.0.0.0/24", shared=True
        )
    assert first_free_integer(Network.objects.all(), "vlan", low, high) == expected
    assert Host.objects.count() == 0


def test_vlan_ranges(settings):
    assert parse_vlan_ranges("physnet1:100:199, physnet2:200:299") == {
        "physnet1": (100, 199),
        "physnet2": (200, 299),
    }
    settings.CIAO_VLAN_RANGES = "physnet1:100:199"
    settings.CIAO_VLAN_DEFAULT_RANGE = "300:399"
    assert vlan_range_for("physnet1") == (100, 199)
    assert vlan_range_for("other") == (300, 399)
    with pytest.raises(ValueError):
        parse_vlan_ranges("p:0:5000")


def test_random_mac_is_locally_administered_unicast():
    for _ in range(200):
        first = int(random_mac()[:2], 16)
        assert first & 0x02 and not first & 0x01
