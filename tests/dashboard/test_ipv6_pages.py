"""The dashboard shows a dual-stack network's IPv6 prefix and mode, and each attachment's
IPv6 address and source, on the network and instance pages (and the networks list)."""

import pytest

from ciaoweb.instances.services import NetworkRequest, create_instance
from ciaoweb.networks.services import create_network

pytestmark = pytest.mark.django_db


def test_network_and_instance_pages_show_ipv6(pages):
    network = create_network(
        tenant=pages.tenant_a,
        name="dual",
        kind="sriov",
        physnet="physnet2",
        vlan=130,
        cidr="10.9.0.0/24",
        ipv6_cidr="fd00:9::/64",
        ipv6_mode="slaac",
    )
    instance = create_instance(
        tenant=pages.tenant_a,
        name="six",
        kind="vm",
        networks=[NetworkRequest(network, mac="52:54:00:12:34:56")],
    )
    address = "fd00:9::5054:ff:fe12:3456"
    body = pages.alice_page.get(f"/networks/{network.pk}/").content.decode()
    assert "fd00:9::/64 (slaac)" in body
    assert f'<td data-field="ipv6">{address}</td>' in body
    body = pages.alice_page.get(f"/instances/{instance.pk}/").content.decode()
    assert f'<td data-field="ipv6">{address}</td>' in body
    assert '<td data-field="ipv6_source">slaac</td>' in body
    assert "fd00:9::/64 (slaac)" in pages.alice_page.get("/networks/").content.decode()
    # An IPv4-only network says so.
    body = pages.alice_page.get(f"/networks/{pages.net_a.pk}/").content.decode()
    assert "— (IPv4 only)" in body


def test_the_network_form_offers_the_ipv6_fields(pages):
    body = pages.alice_page.get("/networks/").content.decode()
    assert 'name="ipv6_cidr"' in body and 'name="ipv6_mode"' in body
