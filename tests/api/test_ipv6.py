"""Dual-stack networks (DESIGN §3a, IPv6): the fields, their 400s, and the addresses the
controller gives attachments (the SLAAC EUI-64, the DHCPv6 reservation)."""

import ipaddress

import pytest
from django.db import IntegrityError, transaction

from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import NetworkRequest, create_instance
from ciaoweb.networks.ipv6 import eui64
from ciaoweb.networks.models import Network
from ciaoweb.networks.services import create_network
from tests.api.helpers import url
from tests.worlds import provisioned

DUAL = {
    "name": "dual",
    "kind": "sriov",
    "physnet": "physnet2",
    "cidr": "10.9.0.0/24",
    "ipv6_cidr": "fd00:9::/64",
}


def _create(client, **change):
    return client.post(url("networks"), {**DUAL, **change}, format="json")


def test_dual_stack_network_defaults_to_dhcpv6(world):
    answer = _create(world.alice)
    assert answer.status_code == 201, answer.data
    assert (answer.data["ipv6_cidr"], answer.data["ipv6_mode"]) == ("fd00:9::/64", "dhcpv6")


def test_ipv4_only_network_has_no_ipv6(world):
    answer = _create(world.alice, ipv6_cidr="")
    assert answer.status_code == 201, answer.data
    assert (answer.data["ipv6_cidr"], answer.data["ipv6_mode"]) == ("", "")


def test_ipv6_cidr_is_normalised(world):
    answer = _create(world.alice, ipv6_cidr=" FD00:0009:0:0::/64 ", ipv6_mode="slaac")
    assert answer.status_code == 201, answer.data
    assert answer.data["ipv6_cidr"] == "fd00:9::/64"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"ipv6_cidr": "banana"}, "ipv6_cidr", "not a valid IPv6 CIDR"),
        ({"ipv6_cidr": "10.9.0.0/24"}, "ipv6_cidr", "not a valid IPv6 CIDR"),
        ({"ipv6_cidr": "fd00:9::1/64"}, "ipv6_cidr", "has host bits set"),
        ({"ipv6_cidr": "fd00:9::/129"}, "ipv6_cidr", "not a valid IPv6 CIDR"),
        ({"ipv6_cidr": "ff02::/64"}, "ipv6_cidr", "not a unicast prefix"),
        ({"ipv6_cidr": "fe80::/64"}, "ipv6_cidr", "not a unicast prefix"),
        ({"ipv6_cidr": "fd00:9::/80", "ipv6_mode": "slaac"}, "ipv6_cidr", "needs a /64"),
        ({"ipv6_cidr": "fd00::/48"}, "ipv6_cidr", "between /64 and /120"),
        ({"ipv6_cidr": "fd00:9::/124"}, "ipv6_cidr", "between /64 and /120"),
        ({"ipv6_mode": "stateful"}, "ipv6_mode", "not a valid choice"),
        ({"ipv6_cidr": "", "ipv6_mode": "slaac"}, "ipv6_mode", "needs an ipv6_cidr"),
    ],
)
def test_network_ipv6_rejects(world, change, field, message):
    answer = _create(world.alice, **change)
    assert answer.status_code == 400, answer.data
    assert message in " ".join(str(m) for m in answer.data[field]), answer.data


def test_ipv6_prefix_may_not_overlap_the_tenants_networks_on_the_physnet(world):
    assert _create(world.alice).status_code == 201
    answer = _create(world.alice, name="dual2", cidr="10.8.0.0/24", ipv6_cidr="fd00:9::/112")
    assert answer.status_code == 400
    assert "overlaps fd00:9::/64 of network" in answer.data["ipv6_cidr"][0]
    # Another physnet, or another tenant, may use the same prefix (as for IPv4).
    other_physnet = _create(world.alice, name="dual3", physnet="physnet1", cidr="10.7.0.0/24")
    assert other_physnet.status_code == 201, other_physnet.data
    assert _create(world.bob).status_code == 201


def test_overlay_networks_stay_ipv4_only(world):
    default = world.tenant_a.networks.get(is_primary=True)
    answer = world.alice.patch(
        url("networks", default), {"ipv6_cidr": "fd00:1::/64"}, format="json"
    )
    assert answer.status_code == 400 and "IPv4-only" in answer.data["ipv6_cidr"][0]


def test_underlay_networks_take_slaac_only(world):
    body = {**DUAL, "ipam": "underlay", "vlan": 300 + 7, "tenant": str(world.tenant_a.pk)}
    answer = world.admin.post(url("networks"), body, format="json")
    assert answer.status_code == 400 and "takes ipv6_mode=slaac" in answer.data["ipv6_mode"][0]
    answer = world.admin.post(url("networks"), {**body, "ipv6_mode": "slaac"}, format="json")
    assert answer.status_code == 201, answer.data


@pytest.mark.parametrize(
    ("change", "value"), [("ipv6_cidr", "fd00:10::/64"), ("ipv6_mode", "slaac")]
)
def test_network_in_use_keeps_its_ipv6(world, change, value):
    network = create_network(**{**_fields(world), "ipv6_mode": "dhcpv6"})
    _launch(world, network)
    answer = world.alice.patch(url("networks", network), {change: value}, format="json")
    assert answer.status_code == 400
    assert f"in use by 1 attachments: {change} cannot change" in answer.data[change][0]


def test_network_not_in_use_gains_and_drops_ipv6(world):
    added = world.alice.patch(
        url("networks", world.net_a), {"ipv6_cidr": "fd00:a::/64"}, format="json"
    )
    assert added.status_code == 200, added.data
    assert (added.data["ipv6_cidr"], added.data["ipv6_mode"]) == ("fd00:a::/64", "dhcpv6")
    dropped = world.alice.patch(url("networks", world.net_a), {"ipv6_cidr": ""}, format="json")
    assert dropped.status_code == 200, dropped.data
    assert (dropped.data["ipv6_cidr"], dropped.data["ipv6_mode"]) == ("", "")


# -- attachments ------------------------------------------------------------------------


def _fields(world, **change):
    fields = {
        "tenant": world.tenant_a,
        "name": "dual",
        "kind": "sriov",
        "physnet": "physnet2",
        "vlan": 120,
        "cidr": "10.9.0.0/24",
        "ipv6_cidr": "fd00:9::/64",
    }
    return {**fields, **change}


def _launch(world, network, name="web", kind="container", **entry):
    return create_instance(
        tenant=world.tenant_a,
        name=name,
        kind=kind,
        networks=[NetworkRequest(network, **entry)],
    )


def _secondary(instance):
    return instance.attachments.get(ifname="eth1")


def test_slaac_address_is_the_eui64_of_the_mac(world):
    network = create_network(**_fields(world, ipv6_mode="slaac"))
    attachment = _secondary(_launch(world, network, mac="52:54:00:12:34:56"))
    assert (attachment.ipv6, attachment.ipv6_source) == ("fd00:9::5054:ff:fe12:3456", "slaac")
    # The primary overlay stays IPv4-only.
    eth0 = attachment.instance.attachments.get(ifname="eth0")
    assert (eth0.ipv6, eth0.ipv6_source) == (None, "")


def test_eui64_flips_the_universal_local_bit():
    net = ipaddress.IPv6Network("2001:db8:1:2::/64")
    assert eui64(net, "02:00:00:00:00:0a") == "2001:db8:1:2:0:ff:fe00:a"
    assert eui64(net, "00:1b:21:aa:bb:cc") == "2001:db8:1:2:21b:21ff:feaa:bbcc"


def test_dhcpv6_reserves_the_lowest_free_address(world):
    network = create_network(**_fields(world, ipv6_mode="dhcpv6"))
    first = _secondary(_launch(world, network, name="a"))
    second = _secondary(_launch(world, network, name="b"))
    assert (first.ipv6, first.ipv6_source) == ("fd00:9::10", "controller")
    assert second.ipv6 == "fd00:9::11"
    assert network.dhcp_server_ipv6 == "fd00:9::2"


def test_dhcpv6_honours_a_requested_address(world):
    network = create_network(**_fields(world, ipv6_mode="dhcpv6"))
    attachment = _secondary(_launch(world, network, ipv6="fd00:9::abcd"))
    assert attachment.ipv6 == "fd00:9::abcd"
    # The next lowest-free allocation is not disturbed by it.
    assert _secondary(_launch(world, network, name="b")).ipv6 == "fd00:9::10"


def test_dhcpv6_network_full_is_409(world):
    network = create_network(**_fields(world, ipv6_mode="dhcpv6", ipv6_cidr="fd00:9::/120"))
    # /120: ::10 .. ::7f are the instances' (112 addresses); rows written directly.
    for n in range(0x10, 0x80):
        holder = Instance.objects.create(tenant=world.tenant_a, name=f"h{n}", kind="vm")
        Attachment.objects.create(
            instance=holder,
            network=network,
            ifname="eth1",
            mac=f"02:00:00:00:01:{n:02x}",
            ipv6=f"fd00:9::{n:x}",
        )
    answer = world.alice.post(
        url("instances"),
        {"name": "over", "kind": "container", "networks": [{"network": str(network.pk)}]},
        format="json",
    )
    assert answer.status_code == 409, answer.data
    assert "no free IPv6 address left on network dual" in answer.data["detail"]


def instance_body(network, **entry):
    return {
        "name": "web",
        "kind": "container",
        "networks": [{"network": str(network.pk), **entry}],
    }


@pytest.mark.parametrize(
    ("mode", "entry", "message"),
    [
        ("dhcpv6", {"ipv6": "fd00:8::10"}, "not inside fd00:9::/64"),
        ("dhcpv6", {"ipv6": "fd00:9::2"}, "kept for the network's router and DHCP server"),
        ("dhcpv6", {"ipv6": "fd00:9::"}, "kept for the network's router and DHCP server"),
        ("dhcpv6", {"ipv6": "fd00:9::ffff:ffff:ffff:ff80"}, "subnet anycast"),
        ("dhcpv6", {"ipv6": "banana"}, "valid IPv6"),
        ("dhcpv6", {"ipv6": "10.9.0.10"}, "valid IPv6"),
        ("slaac", {"ipv6": "fd00:9::10"}, "EUI-64 of the MAC"),
    ],
)
def test_requested_ipv6_rejects(world, mode, entry, message):
    network = create_network(**_fields(world, ipv6_mode=mode))
    answer = world.alice.post(url("instances"), instance_body(network, **entry), format="json")
    assert answer.status_code == 400, answer.data
    problems = answer.data["networks"][0]["ipv6"]
    assert message in " ".join(str(m) for m in problems), answer.data
    assert not Attachment.objects.filter(network=network).exists()


def test_requested_ipv6_taken_is_400(world):
    network = create_network(**_fields(world, ipv6_mode="dhcpv6"))
    _launch(world, network, name="first", ipv6="fd00:9::20")
    answer = world.alice.post(
        url("instances"), instance_body(network, ipv6="fd00:9::20"), format="json"
    )
    assert answer.status_code == 400
    assert "already taken on dual" in answer.data["networks"][0]["ipv6"][0]


def test_requested_ipv6_on_an_ipv4_only_network_is_400(world):
    answer = world.alice.post(
        url("instances"), instance_body(world.net_a, ipv6="fd00:9::20"), format="json"
    )
    assert answer.status_code == 400
    assert "has no ipv6_cidr" in answer.data["networks"][0]["ipv6"][0]


def test_attachment_representation_has_ipv6(world):
    network = create_network(**_fields(world, ipv6_mode="dhcpv6"))
    answer = world.alice.post(url("instances"), instance_body(network), format="json")
    assert answer.status_code == 201, answer.data
    eth1 = next(a for a in answer.data["attachments"] if a["ifname"] == "eth1")
    assert (eth1["ipv6"], eth1["ipv6_source"]) == ("fd00:9::10", "controller")
    listed = world.alice.get(url("attachments"), {"network": str(network.pk)}).data["results"]
    assert [a["ipv6"] for a in listed] == ["fd00:9::10"]


def test_underlay_ipv6_is_unknown_for_vms_and_reported_for_containers(world):
    network = create_network(
        **_fields(world, ipam="underlay", ipv6_mode="slaac", vlan=310, tenant=world.tenant_a)
    )
    vm = _secondary(_launch(world, network, name="v", kind="vm"))
    container = _secondary(_launch(world, network, name="c"))
    assert (vm.ipv6, vm.ipv6_source) == (None, "unknown")
    assert (container.ipv6, container.ipv6_source) == (None, "underlay")


def test_network_model_refuses_a_mode_without_prefix(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        Network.objects.filter(pk=world.net_a.pk).update(ipv6_mode="slaac")


def test_hot_plug_onto_a_dual_stack_network_reserves_the_requested_ipv6(world):
    network = create_network(**_fields(world, ipv6_mode="dhcpv6"))
    instance = provisioned(
        create_instance(tenant=world.tenant_a, name="hot", kind="vm", networks=[])
    )
    body = {"network": str(network.pk), "ipv6": "fd00:9::beef"}
    answer = world.alice.post(url("instances", instance, "attachments"), body, format="json")
    assert answer.status_code == 202, answer.data
    assert (answer.data["ipv6"], answer.data["ipv6_source"]) == ("fd00:9::beef", "controller")
