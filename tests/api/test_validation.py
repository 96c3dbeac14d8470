"""Every validation rule of DESIGN §4: the bad input, the 400 and its message."""

import pytest

from ciaoweb.instances.services import NetworkRequest, create_instance
from ciaoweb.inventory.models import Host
from tests.api.helpers import url

GOOD_NETWORK = {"name": "storage", "kind": "sriov", "physnet": "physnet2", "cidr": "10.9.0.0/24"}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"vlan": 0}, "vlan", "between 1 and 4094"),
        ({"vlan": 4095}, "vlan", "between 1 and 4094"),
        ({"vlan": 100, "physnet": "physnet1"}, "vlan", "already used on physnet physnet1"),
        ({"cidr": "10.9.0.0/33"}, "cidr", "not a valid IPv4 CIDR"),
        ({"cidr": "banana"}, "cidr", "not a valid IPv4 CIDR"),
        ({"cidr": "10.9.0.1/24"}, "cidr", "has host bits set"),
        ({"cidr": "2001:db8::/64"}, "cidr", "not a valid IPv4 CIDR"),
        ({"cidr": "10.0.0.0/7"}, "cidr", "between /8 and /30"),
        ({"cidr": "10.9.0.0/31"}, "cidr", "between /8 and /30"),
        ({"physnet": "physnet1", "cidr": "192.168.10.128/25"}, "cidr", "overlaps 192.168.10.0/24"),
        ({"gateway": "10.10.0.1"}, "gateway", "not inside 10.9.0.0/24"),
        ({"gateway": "10.9.0.0"}, "gateway", "network address"),
        ({"gateway": "10.9.0.255"}, "gateway", "broadcast address"),
        ({"gateway": "10.9.0.254"}, "gateway", "reserved for the network's DHCP server"),
        ({"gateway": "not-an-ip"}, "gateway", "valid IPv4"),
        ({"name": "Storage"}, "name", "must be a DNS label"),
        ({"name": "-storage"}, "name", "must be a DNS label"),
        ({"name": "a" * 64}, "name", "no more than 63"),
        ({"name": "data"}, "name", "already exists"),
        ({"kind": "vxlan"}, "kind", "not a valid choice"),
        ({"ipam": "static"}, "ipam", "not a valid choice"),
        ({"kind": "overlay", "physnet": ""}, "kind", "created with its tenant"),
        ({"physnet": ""}, "physnet", "needs a physnet"),
        ({"mtu": 100}, "mtu", "MTU must be between"),
        ({"dns_domain": "bad_domain"}, "dns_domain", "must be a DNS domain"),
    ],
)
def test_network_create_rejects(world, change, field, message):
    client, body = world.alice, {**GOOD_NETWORK, **change}
    if "vlan" in change:  # admin-only (members: 403, tests/security/test_tenant_limits.py)
        client, body = world.admin, {**body, "tenant": str(world.tenant_a.pk)}
    answer = client.post(url("networks"), body, format="json")
    assert answer.status_code == 400, answer.data
    assert message in " ".join(str(m) for m in answer.data[field]), answer.data


def test_overlap_allowed_across_tenants_and_physnets(world):
    # tenant b uses 192.168.10.0/24 on physnet1 too; a differs by physnet here
    payload = {**GOOD_NETWORK, "cidr": "192.168.10.0/24"}
    assert world.alice.post(url("networks"), payload, format="json").status_code == 201


def test_vlan_allocated_from_range(world, settings):
    settings.CIAO_VLAN_RANGES = "physnet2:500:501"
    first = world.alice.post(url("networks"), GOOD_NETWORK, format="json")
    second = world.alice.post(
        url("networks"), {**GOOD_NETWORK, "name": "s2", "cidr": "10.8.0.0/24"}, format="json"
    )
    third = world.alice.post(
        url("networks"), {**GOOD_NETWORK, "name": "s3", "cidr": "10.7.0.0/24"}, format="json"
    )
    assert (first.data["vlan"], second.data["vlan"]) == (500, 501)
    assert third.status_code == 409 and third.data["detail"].startswith("no capacity")


def _in_use(world):
    create_instance(
        tenant=world.tenant_a, name="web", kind="vm", networks=[NetworkRequest(world.net_a)]
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("cidr", "192.168.20.0/24"), ("vlan", 120), ("physnet", "physnet2")],
)
def test_network_in_use_cannot_change(world, field, value):
    _in_use(world)
    client = world.admin if field == "vlan" else world.alice  # members may not set a VLAN
    answer = client.patch(url("networks", world.net_a), {field: value}, format="json")
    assert answer.status_code == 400
    assert f"in use by 1 attachments: {field} cannot change" in answer.data[field][0]


def test_network_in_use_cannot_be_deleted(world):
    _in_use(world)
    answer = world.alice.delete(url("networks", world.net_a))
    assert answer.status_code == 409
    assert "in use" in answer.data["detail"]


def test_network_not_in_use_can_change_cidr(world):
    answer = world.alice.patch(
        url("networks", world.net_a), {"cidr": "192.168.20.0/24"}, format="json"
    )
    assert answer.status_code == 400 and "not inside" in answer.data["gateway"][0]
    change = {"cidr": "192.168.20.0/24", "gateway": "192.168.20.1"}
    answer = world.alice.patch(url("networks", world.net_a), change, format="json")
    assert answer.status_code == 200 and answer.data["cidr"] == "192.168.20.0/24"
    assert set(world.net_a.allocations.values_list("ip", flat=True)) == {
        "192.168.20.1",
        "192.168.20.254",
    }


def test_primary_network_cannot_be_deleted_or_renamed(world):
    default = world.tenant_a.networks.get(is_primary=True)
    assert world.alice.delete(url("networks", default)).status_code == 409
    answer = world.alice.patch(url("networks", default), {"name": "main"}, format="json")
    assert answer.status_code == 400 and "cannot be renamed" in answer.data["name"][0]


def test_member_setting_tenant_or_shared_is_403(world):
    for extra in ({"tenant": str(world.tenant_b.pk)}, {"shared": True}):
        answer = world.alice.post(url("networks"), {**GOOD_NETWORK, **extra}, format="json")
        assert answer.status_code == 403


def test_kind_cannot_change(world):
    answer = world.admin.patch(url("networks", world.net_a), {"kind": "overlay"}, format="json")
    assert answer.status_code == 400 and "cannot change" in answer.data["kind"][0]


# -- instances -----------------------------------------------------------------------


def instance_payload(world, **entry):
    return {
        "name": "web",
        "kind": "container",
        "networks": [{"network": str(world.net_a.pk), **entry}],
    }


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ({"mac": "01:00:5e:00:00:01"}, "mac", "unicast"),
        ({"mac": "00:00:00:00:00:00"}, "mac", "all-zero"),
        ({"mac": "02:00:00:00:00"}, "mac", "must be a MAC address"),
        ({"ip": "192.168.11.5"}, "ip", "not inside 192.168.10.0/24"),
        ({"ip": "192.168.10.0"}, "ip", "network address"),
        ({"ip": "192.168.10.255"}, "ip", "broadcast address"),
        ({"ip": "192.168.10.1"}, "ip", "gateway"),
        ({"ip": "192.168.10.254"}, "ip", "reserved for the DHCP server"),
        ({"ip": "nope"}, "ip", "valid IPv4"),
    ],
)
def test_instance_network_entry_rejects(world, entry, field, message):
    answer = world.alice.post(url("instances"), instance_payload(world, **entry), format="json")
    assert answer.status_code == 400, answer.data
    assert message in str(answer.data["networks"][0][field]), answer.data


def test_taken_ip_and_mac_are_rejected(world):
    first = world.alice.post(
        url("instances"),
        instance_payload(world, ip="192.168.10.7", mac="02:aa:00:00:00:01"),
        format="json",
    )
    assert first.status_code == 201, first.data
    payload = instance_payload(world, ip="192.168.10.7")
    payload["name"] = "web2"
    answer = world.alice.post(url("instances"), payload, format="json")
    assert answer.status_code == 400 and "already taken" in str(answer.data["networks"][0]["ip"])
    payload = instance_payload(world, mac="02:AA:00:00:00:01")
    payload["name"] = "web3"
    answer = world.alice.post(url("instances"), payload, format="json")
    assert answer.status_code == 400 and "already in use" in str(answer.data["networks"][0]["mac"])


def test_instance_name_rules(world):
    for name, message in (("Web_1", "DNS label"), ("", "blank")):
        answer = world.alice.post(
            url("instances"), {**instance_payload(world), "name": name}, format="json"
        )
        assert answer.status_code == 400 and message in str(answer.data["name"])
    world.alice.post(url("instances"), instance_payload(world), format="json")
    answer = world.alice.post(url("instances"), instance_payload(world), format="json")
    assert answer.status_code == 400 and "already exists" in answer.data["name"][0]


def test_instance_unknown_kind_and_foreign_network(world):
    answer = world.alice.post(
        url("instances"), {**instance_payload(world), "kind": "pod"}, format="json"
    )
    assert answer.status_code == 400 and "not a valid choice" in answer.data["kind"][0]
    payload = {"name": "web", "kind": "vm", "networks": [{"network": str(world.net_b.pk)}]}
    answer = world.alice.post(url("instances"), payload, format="json")
    assert answer.status_code == 400 and "does not exist" in str(
        answer.data["networks"][0]["network"]
    )


def test_member_setting_host_or_tenant_is_403(world):
    for extra in ({"host": "node1"}, {"tenant": str(world.tenant_a.pk)}):
        answer = world.alice.post(
            url("instances"), {**instance_payload(world), **extra}, format="json"
        )
        assert answer.status_code == 403


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("nowhere", "does not exist"),
        ("node2", "is maintenance, not online"),
        ("node1", "free VF(s) on physnet physnet1, needs 1"),
    ],
)
def test_explicit_host_must_exist_be_online_and_have_vfs(world, host, message):
    Host.objects.filter(name="node2").update(state="maintenance")
    world.hosts[0].pfs.get(physnet="physnet1").vfs.update(state="error")
    payload = {**instance_payload(world), "host": host, "tenant": str(world.tenant_a.pk)}
    answer = world.admin.post(url("instances"), payload, format="json")
    assert answer.status_code == 400 and message in answer.data["host"][0], answer.data


def test_admin_must_name_a_tenant(world):
    answer = world.admin.post(url("instances"), instance_payload(world), format="json")
    assert answer.status_code == 400 and "tenant" in answer.data


def test_malformed_bodies_are_400_not_500(world):
    for body in ([], "x", {"networks": "nope"}, {"networks": [1]}):
        answer = world.alice.post(url("instances"), body, format="json")
        assert answer.status_code == 400, (body, answer.status_code)
    assert world.alice.post(url("networks"), [], format="json").status_code == 400


# --- PF capabilities a network needs (ciaoweb.networks.validation) ----------------------


def test_no_network_attribute_needs_a_pf_capability_today(world):
    from ciaoweb.instances.scheduler import requirements
    from ciaoweb.networks.validation import required_capabilities

    assert required_capabilities(world.net_a) == set()
    assert required_capabilities(GOOD_NETWORK) == set()
    assert requirements([world.net_a, world.net_b]) == {}


def test_a_network_needing_a_knob_no_pf_of_its_physnet_has_is_refused(world, monkeypatch):
    from ciaoweb.inventory.models import PhysicalFunction

    monkeypatch.setattr(
        "ciaoweb.networks.validation.required_capabilities", lambda network: {"vlan_8021ad"}
    )
    pfs = PhysicalFunction.objects.filter(physnet="physnet2")
    pfs.update(capabilities={"link_state": True, "vlan_8021ad": False})
    answer = world.alice.post(url("networks"), GOOD_NETWORK, format="json")
    assert answer.status_code == 400, answer.data
    [message] = answer.data["physnet"]
    assert "needs 802.1ad" in message and "no PF on physnet physnet2" in message
    # an update is refused the same way
    patched = world.alice.patch(url("networks", world.net_a), {"name": "renamed"}, format="json")
    assert patched.status_code == 200, patched.data  # physnet1's PFs have not said
    PhysicalFunction.objects.filter(physnet="physnet1").update(capabilities={"vlan_8021ad": False})
    patched = world.alice.patch(url("networks", world.net_a), {"name": "again"}, format="json")
    assert patched.status_code == 400 and "physnet physnet1" in str(patched.data["physnet"])
    # one PF of the physnet that has the knob (or has not reported it) is enough
    first = pfs.order_by("host__name").first()
    PhysicalFunction.objects.filter(pk=first.pk).update(capabilities={"vlan_8021ad": True})
    assert world.alice.post(url("networks"), GOOD_NETWORK, format="json").status_code == 201
