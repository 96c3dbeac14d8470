import random
import re
from collections import Counter
from ipaddress import IPv4Address

import pytest

from ciaoweb.core.exceptions import InvalidInput, NoCapacity
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import (
    NetworkRequest,
    create_instance,
    finalize_instance_deletion,
)
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.ipam import (
    DRIFT_ATTEMPTS,
    allocate_ip,
    dynamic_ranges,
    host_range,
    release_ip,
    reserve_infrastructure_ips,
)
from ciaoweb.networks.models import IPAllocation, Network
from ciaoweb.networks.services import create_network, update_network
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.services import create_tenant
from tests.api.helpers import inventory


def test_dynamic_ranges_skip_gateway_and_server():
    network = Network(cidr="10.0.0.0/24", gateway="10.0.0.1", ipam="dynamic")
    assert dynamic_ranges(network) == [("10.0.0.2", "10.0.0.253")]
    network.gateway = "10.0.0.100"
    assert dynamic_ranges(network) == [("10.0.0.1", "10.0.0.99"), ("10.0.0.101", "10.0.0.253")]


@pytest.mark.django_db
def test_network_reserves_gateway_and_dhcp_server():
    network = create_network(
        tenant=None, name="pub", kind="sriov", physnet="p", cidr="10.5.0.0/29", ipam="controller"
    )
    assert network.shared and network.vlan == 100 and network.gateway == "10.5.0.1"
    assert sorted(network.allocations.values_list("ip", "purpose")) == [
        ("10.5.0.1", "gateway"),
        ("10.5.0.6", "dhcp_server"),
    ]
    underlay = create_network(
        tenant=None, name="under", kind="sriov", physnet="p", cidr="10.6.0.0/24", ipam="underlay"
    )
    assert underlay.gateway is None and underlay.vlan == 101 and not underlay.allocations.exists()


# --- free ranges: lowest-first allocation whose cost does not grow with the network ------


def _net(name: str = "n", cidr: str = "10.9.0.0/24", ipam: str = "controller") -> Network:
    return create_network(tenant=None, name=name, kind="sriov", physnet="p", cidr=cidr, ipam=ipam)


def _attachment(network: Network) -> Attachment:
    tenant, _ = Tenant.objects.get_or_create(name="t")
    number = Attachment.objects.count()
    instance = Instance.objects.create(tenant=tenant, name=f"i{number}", kind="container")
    return Attachment.objects.create(
        instance=instance,
        network=network,
        ifname="eth1",
        mac=f"02:00:00:00:{number // 256:02x}:{number % 256:02x}",
    )


def _allocate(network: Network, requested: str | None = None) -> str:
    return allocate_ip(network, _attachment(network), requested)


def _release(network: Network, ip: str) -> None:
    release_ip(network, network.allocations.get(ip=ip))


def _ranges(network: Network) -> list[tuple[str, str]]:
    rows = network.free_ranges.order_by("first").values_list("first", "last")
    return [(str(IPv4Address(a)), str(IPv4Address(b))) for a, b in rows]


def _runs(free: set[int]) -> list[tuple[str, str]]:
    """The maximal runs of consecutive integers of `free`, as the ranges must be."""
    runs: list[list[int]] = []
    for ip in sorted(free):
        if runs and runs[-1][1] == ip - 1:
            runs[-1][1] = ip
        else:
            runs.append([ip, ip])
    return [(str(IPv4Address(a)), str(IPv4Address(b))) for a, b in runs]


def _ledger_free(network: Network) -> set[int]:
    low, high = host_range(network)
    return set(range(low, high + 1)) - set(network.allocations.values_list("ip_int", flat=True))


@pytest.mark.django_db
def test_new_network_has_one_range_between_gateway_and_dhcp_server():
    assert _ranges(_net()) == [("10.9.0.2", "10.9.0.253")]


@pytest.mark.django_db
def test_lowest_first_after_releases_in_the_middle():
    network = _net(cidr="10.9.0.0/28")
    assert [_allocate(network) for _ in range(5)] == [f"10.9.0.{i}" for i in range(2, 7)]
    _release(network, "10.9.0.5")
    _release(network, "10.9.0.3")
    assert _ranges(network) == [
        ("10.9.0.3", "10.9.0.3"),
        ("10.9.0.5", "10.9.0.5"),
        ("10.9.0.7", "10.9.0.13"),
    ]
    assert [_allocate(network) for _ in range(3)] == ["10.9.0.3", "10.9.0.5", "10.9.0.7"]


@pytest.mark.django_db
def test_requested_ip_splits_a_range():
    network = _net()
    assert _allocate(network, "10.9.0.50") == "10.9.0.50"
    assert _ranges(network) == [("10.9.0.2", "10.9.0.49"), ("10.9.0.51", "10.9.0.253")]
    assert _allocate(network, "10.9.0.2") == "10.9.0.2"  # a range's first address
    assert _allocate(network, "10.9.0.253") == "10.9.0.253"  # a range's last address
    assert _ranges(network) == [("10.9.0.3", "10.9.0.49"), ("10.9.0.51", "10.9.0.252")]
    assert _allocate(network) == "10.9.0.3"
    with pytest.raises(InvalidInput, match="already taken"):
        _allocate(network, "10.9.0.50")


@pytest.mark.django_db
def test_release_merges_both_neighbours():
    network = _net()
    assert [_allocate(network) for _ in range(3)] == ["10.9.0.2", "10.9.0.3", "10.9.0.4"]
    _release(network, "10.9.0.2")
    _release(network, "10.9.0.4")  # joins the range above
    assert _ranges(network) == [("10.9.0.2", "10.9.0.2"), ("10.9.0.4", "10.9.0.253")]
    _release(network, "10.9.0.3")  # joins both
    assert _ranges(network) == [("10.9.0.2", "10.9.0.253")]


@pytest.mark.django_db
def test_ranges_match_the_ledger_after_random_allocations_and_releases():
    """A brute-force model (a set of free integers) against the ranges, op after op."""
    network = _net(cidr="10.9.0.0/26")
    low, high = host_range(network)
    free = set(range(low, high + 1)) - {low, high}  # gateway, DHCP server
    rng, done = random.Random(7), Counter()
    for _ in range(400):
        op = rng.random()
        if op < 0.45:
            if free:
                assert _allocate(network) == str(IPv4Address(min(free)))
                free.remove(min(free))
                done["lowest"] += 1
            else:
                with pytest.raises(NoCapacity):
                    _allocate(network)
                done["full"] += 1
        elif op < 0.6 and free:
            ip = rng.choice(sorted(free))
            assert _allocate(network, str(IPv4Address(ip))) == str(IPv4Address(ip))
            free.remove(ip)
            done["requested"] += 1
        else:
            taken = network.allocations.filter(purpose="attachment").order_by("ip_int")
            if allocation := rng.choice([None, *taken]):
                release_ip(network, allocation)
                free.add(allocation.ip_int)
                done["released"] += 1
        assert _ranges(network) == _runs(free) == _runs(_ledger_free(network))
    assert min(done[k] for k in ("lowest", "full", "requested", "released")) >= 10, done


@pytest.mark.django_db
def test_ranges_heal_when_they_list_taken_addresses():
    network = _net()
    for ip in range(2, 5):
        _bypass(network, ip)
    assert _allocate(network) == "10.9.0.5"  # .2-.4 dropped on the way
    assert _ranges(network) == [("10.9.0.6", "10.9.0.253")]
    # more drift than the loop tolerates: rebuilt from the ledger
    for ip in range(6, 6 + DRIFT_ATTEMPTS + 2):
        _bypass(network, ip)
    assert _allocate(network) == f"10.9.0.{6 + DRIFT_ATTEMPTS + 2}"
    assert _ranges(network) == _runs(_ledger_free(network))


def _bypass(network: Network, last_octet: int) -> None:
    """An allocation written around ipam: the ranges still list its address."""
    ip = f"10.9.0.{last_octet}"
    IPAllocation.objects.create(
        network=network, ip=ip, ip_int=int(IPv4Address(ip)), purpose="gateway"
    )


@pytest.mark.django_db
def test_ranges_heal_when_they_lost_free_addresses():
    network = _net(cidr="10.9.0.0/29")  # .2-.5 for instances
    assert [_allocate(network) for _ in range(4)] == [f"10.9.0.{i}" for i in range(2, 6)]
    # deleted around ipam (say in the admin): the ranges never got them back
    network.allocations.filter(ip__in=["10.9.0.3", "10.9.0.4"]).delete()
    assert _allocate(network, "10.9.0.4") == "10.9.0.4"
    assert _allocate(network) == "10.9.0.3"  # no range left, but the ledger has room
    with pytest.raises(NoCapacity):
        _allocate(network)
    assert _ranges(network) == []


@pytest.mark.django_db
def test_cidr_change_rebuilds_ranges():
    network = _net()
    update_network(network, {"cidr": "10.20.0.0/28", "gateway": "10.20.0.1"})
    assert _ranges(network) == [("10.20.0.2", "10.20.0.13")]
    assert _allocate(network) == "10.20.0.2"


@pytest.mark.django_db
def test_tiny_networks_and_a_full_one():
    nothing_left = "no free IP address left on network {} ({})"
    slash30 = _net("thirty", "10.9.1.0/30")  # validation allows /8-/30
    assert _ranges(slash30) == []  # .1 gateway, .2 DHCP server
    with pytest.raises(NoCapacity, match=re.escape(nothing_left.format("thirty", "10.9.1.0/30"))):
        _allocate(slash30)
    assert _ranges(_net("under", "10.9.2.0/30", ipam="underlay")) == [("10.9.2.1", "10.9.2.2")]
    for cidr in ("10.9.3.0/31", "10.9.3.2/32"):  # only reachable without validation
        network = Network.objects.create(
            name=f"n{cidr[-2:]}",
            kind="sriov",
            physnet="q",
            vlan=int(cidr[-2:]),
            cidr=cidr,
            shared=True,
        )
        reserve_infrastructure_ips(network)
        assert _ranges(network) == []
    full = _net("full", "10.9.4.0/29")
    assert [_allocate(full) for _ in range(4)] == [f"10.9.4.{i}" for i in range(2, 6)]
    with pytest.raises(NoCapacity, match=re.escape(nothing_left.format("full", "10.9.4.0/29"))):
        _allocate(full)


@pytest.mark.django_db
def test_instance_deletion_gives_its_addresses_back():
    register_inventory("node1", inventory("node1", {"p": 2}))
    tenant = create_tenant("acme")
    network = _net()
    requests = [NetworkRequest(network=network)]
    first = create_instance(tenant=tenant, name="a", kind="container", networks=requests)
    create_instance(tenant=tenant, name="b", kind="container", networks=requests)
    primary = Network.objects.get(tenant=tenant, is_primary=True)
    assert _ranges(network) == [("10.9.0.4", "10.9.0.253")]
    assert finalize_instance_deletion(first.pk) is True
    assert _ranges(network) == [("10.9.0.2", "10.9.0.2"), ("10.9.0.4", "10.9.0.253")]
    assert _ranges(primary) == [("10.0.0.2", "10.0.0.2"), ("10.0.0.4", "10.0.0.253")]
    for net in (network, primary):
        assert _ranges(net) == _runs(_ledger_free(net))
