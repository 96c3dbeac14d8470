import pytest

from ciaoweb.networks.ipam import dynamic_ranges
from ciaoweb.networks.models import Network
from ciaoweb.networks.services import create_network


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
