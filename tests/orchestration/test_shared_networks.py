"""Shared networks and teardown (issue 15), in-process: hostnames on a shared network,
lease events for MACs that are no attachment's there, tenant deletion through the
network deletion path, and network changes that reach the running DHCP server.

Node tasks are recorded (settings.CIAO_DISPATCH = "record"); what the API side queues
for the controller's worker is run by hand, as the worker would (`worker`).
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from ciaoweb import taskrouting as names
from ciaoweb.core.exceptions import Conflict
from ciaoweb.events.choices import EventKind
from ciaoweb.events.models import Event
from ciaoweb.instances.choices import IpSource
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import NetworkRequest, create_instance, finalize_instance_deletion
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.choices import LeaseState
from ciaoweb.networks.ipam import dhcp_reservations
from ciaoweb.networks.models import Lease, Network
from ciaoweb.networks.services import create_network, delete_network, update_network
from ciaoweb.orchestration import results, sender, tasks
from ciaoweb.orchestration.dhcp import ensure_server
from ciaoweb.orchestration.models import DhcpServer
from ciaoweb.orchestration.specs import removal_spec
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.services import create_tenant
from tests.api.helpers import client_for, inventory, url


@pytest.fixture
def sent():
    """Node tasks recorded so far, as (task name, node, kwargs); `sent.clear()` forgets."""
    sender.recorded.clear()

    class Sent:
        def __call__(self):
            return [(s.task, s.kwargs["node"], s.kwargs) for s in sender.recorded]

        def clear(self):
            sender.recorded.clear()

    yield Sent()
    sender.recorded.clear()


@pytest.fixture
def cluster(db):
    """Two compute hosts and a network node, each with physnet1 (6 VFs) and physnet2 (2)."""
    for name in ("node1", "node2"):
        register_inventory(
            name,
            {
                **inventory(name, {"physnet1": 6, "physnet2": 2}),
                "mgmt_address": f"10.250.0.{name[-1]}",
            },
        )
    register_inventory(
        "netnode",
        {
            **inventory("netnode", {"physnet1": 6, "physnet2": 2}),
            "is_network_node": True,
            "mgmt_address": "10.250.0.9",
        },
    )


def _network(run, tenant, name, vlan, cidr, ipam="controller", **fields) -> Network:
    return run(
        create_network,
        tenant=tenant,
        name=name,
        kind="sriov",
        physnet="physnet1",
        vlan=vlan,
        cidr=cidr,
        ipam=ipam,
        dns_domain=f"{name}.test",
        **fields,
    )


def _launch(run, tenant, name, *networks) -> Instance:
    return run(
        create_instance,
        tenant=tenant,
        name=name,
        kind="container",
        networks=[NetworkRequest(network=n) for n in networks],
    )


def _admin():
    return client_for(get_user_model().objects.create_superuser("root", "", "secret-root"))


def _refusals() -> list[Event]:
    return list(Event.objects.filter(kind=EventKind.SECURITY_REFUSED).order_by("created"))


# --- 1. hostnames on a shared network ------------------------------------------------------


def test_a_second_instance_name_on_a_shared_network_is_refused_whoever_owns_it(cluster, run):
    acme, other = create_tenant("acme"), create_tenant("other")
    public = _network(run, None, "public", 300, "172.30.0.0/24", shared=True)
    own = _network(run, other, "own", 301, "172.31.0.0/24")
    _launch(run, acme, "db", public)
    free_vfs = VirtualFunction.objects.filter(state=VfState.FREE).count()
    instances = Instance.objects.count()

    with pytest.raises(Conflict, match="the name db is taken on shared network public"):
        _launch(run, other, "db", public)
    assert Instance.objects.count() == instances
    assert VirtualFunction.objects.filter(state=VfState.FREE).count() == free_vfs
    # Through the API: a 409 naming no tenant; the same name elsewhere is fine.
    payload = {
        "name": "db",
        "kind": "container",
        "tenant": str(other.pk),
        "networks": [{"network": str(public.pk)}],
    }
    answer = run(_admin().post, url("instances"), payload, format="json")
    assert answer.status_code == 409, answer.data
    assert "acme" not in str(answer.data)
    _launch(run, other, "db", own)  # names stay unique per tenant only off shared networks
    assert [r["hostname"] for r in dhcp_reservations(public)] == ["db"]


def test_two_instances_of_one_name_made_before_the_rule_get_one_hostname(cluster, run, monkeypatch):
    """Rows that predate the rule: the older attachment keeps the name in the server's
    reservations, the other gets its address without a name (never two dhcp-host lines
    of one name)."""
    acme, other = create_tenant("acme"), create_tenant("other")
    public = _network(run, None, "public", 300, "172.30.0.0/24", shared=True)
    monkeypatch.setattr("ciaoweb.instances.services.check_shared_hostname", lambda *a: None)
    first = _launch(run, acme, "db", public).attachments.get(network=public)
    second = _launch(run, other, "db", public).attachments.get(network=public)
    by_mac = {r["mac"]: r for r in dhcp_reservations(public)}
    assert by_mac[first.mac]["hostname"] == "db"
    assert by_mac[second.mac]["hostname"] is None and by_mac[second.mac]["ip"] == second.ip


# --- 2. lease events only for MACs of attachments on that network --------------------------


def test_a_lease_event_for_a_mac_of_no_attachment_there_changes_nothing(cluster, run):
    acme, other = create_tenant("acme"), create_tenant("other")
    public = _network(run, None, "public", 300, "172.30.0.0/24", ipam="dynamic", shared=True)
    own = _network(run, other, "own", 301, "172.31.0.0/24")
    victim = _launch(run, acme, "web", public).attachments.get(network=public)
    elsewhere = _launch(run, other, "db", own).attachments.get(network=own)
    server = DhcpServer.objects.get(network=public)

    def lease_event(mac, ip, action="add"):
        event = {
            "network_id": str(public.pk),
            "action": action,
            "mac": mac,
            "ip": ip,
            "hostname": "x",
            "expires": 2_000_000_000,
        }
        tasks.lease_event.run(node=server.host.name, event=event, sender=server.host.name)

    lease_event(victim.mac, "172.30.0.200")  # the attachment's own lease: believed
    victim.refresh_from_db()
    assert (victim.ip, victim.ip_source) == ("172.30.0.200", IpSource.DHCP)
    before = list(Lease.objects.values_list("mac", "ip", "state", "hostname"))

    # Another tenant's MAC (an attachment of another network), a made-up one, and an
    # uppercase spelling of a foreign one: refused, recorded, nothing moves.
    for mac in (elsewhere.mac, "02:66:66:66:66:66", elsewhere.mac.upper()):
        for action in ("add", "old", "del"):
            lease_event(mac, "172.30.0.201", action)
    assert list(Lease.objects.values_list("mac", "ip", "state", "hostname")) == before
    victim.refresh_from_db()
    assert (victim.ip, victim.ip_source) == ("172.30.0.200", IpSource.DHCP)
    refused = _refusals()
    assert len(refused) == 9
    assert all("no attachment of that network has it" in e.message for e in refused)
    assert refused[0].data["network_id"] == str(public.pk)


def test_a_deleted_instances_lease_may_end_but_never_come_back(cluster, run):
    """Its attachment is gone, its lease row stays: dnsmasq's later `del` (expiry, the
    release when its reservation went) is believed; an `old` (dnsmasq sends one when the
    reservation goes, its hostname with it) changes nothing and is no security event; an
    `add` for that MAC is refused."""
    acme = create_tenant("acme")
    public = _network(run, None, "public", 300, "172.30.0.0/24", ipam="dynamic", shared=True)
    instance = _launch(run, acme, "web", public)
    mac = instance.attachments.get(network=public).mac
    server = DhcpServer.objects.get(network=public)
    node = server.host.name
    event = {"network_id": str(public.pk), "mac": mac, "ip": "172.30.0.200", "expires": 0}
    tasks.lease_event.run(node=node, event={**event, "action": "add"}, sender=node)
    run(finalize_instance_deletion, instance.pk)
    assert not Attachment.objects.filter(mac=mac).exists()

    tasks.lease_event.run(node=node, event={**event, "action": "old"}, sender=node)
    assert Lease.objects.get(mac=mac).state == LeaseState.RELEASED  # released at deletion
    assert len(_refusals()) == 0
    tasks.lease_event.run(node=node, event={**event, "action": "add"}, sender=node)
    assert Lease.objects.get(mac=mac).state == LeaseState.RELEASED
    assert len(_refusals()) == 1
    tasks.lease_event.run(node=node, event={**event, "action": "del"}, sender=node)
    assert Lease.objects.get(mac=mac).state == LeaseState.RELEASED
    assert len(_refusals()) == 1


# --- 3. deleting a tenant tears its networks down through the network deletion -------------


def _removals(sent) -> list[tuple[str, str, str]]:
    """(node, network id, the spec as JSON) of every remove-DHCP-server task sent."""
    return sorted(
        (node, kwargs["spec"]["network_id"], json.dumps(kwargs["spec"], sort_keys=True))
        for task, node, kwargs in sent()
        if task == names.REMOVE_DHCP_SERVER
    )


def _removal(server: DhcpServer) -> tuple[str, str, str]:
    """What the network deletion path sends for this server (dhcp.remove_server)."""
    spec = json.dumps(removal_spec(server), sort_keys=True)
    return (server.host.name, str(server.network_key), spec)


def _tenant_with_networks(run, name: str, vlan: int, subnet: int) -> Tenant:
    tenant = create_tenant(name)
    _network(run, tenant, "data", vlan, f"10.{subnet}.1.0/24")
    _network(run, tenant, "dyn", vlan + 1, f"10.{subnet}.2.0/24", ipam="dynamic")
    primary = Network.objects.get(tenant=tenant, is_primary=True)
    run(ensure_server, primary.pk)  # the overlay's server, as a first launch places it
    return tenant


def _expected_removals(tenant: Tenant) -> list[tuple]:
    servers = DhcpServer.objects.filter(network__tenant=tenant).select_related("host", "vf__pf")
    return sorted(_removal(s) for s in servers)


def _report_removed(run, sent) -> None:
    for task, node, kwargs in sent():
        if task == names.REMOVE_DHCP_SERVER:
            network_id = kwargs["spec"]["network_id"]
            run(results.dhcp_server_applied, node, network_id, True, "", "", removed=True)


def test_deleting_a_tenant_removes_each_dhcp_server_as_deleting_its_networks_does(
    cluster, run, sent
):
    one = _tenant_with_networks(run, "one", 400, 41)
    two = _tenant_with_networks(run, "two", 410, 42)
    assert DhcpServer.objects.filter(network__tenant=two).count() == 3  # data, dyn, default

    # Tenant one's SR-IOV networks, one by one: one removal each, the same as below.
    expected_one = _expected_removals(one)
    sent.clear()
    for network in Network.objects.filter(tenant=one, is_primary=False):
        run(delete_network, network)
    one_by_one = _removals(sent)
    assert len(one_by_one) == 2
    assert set(one_by_one) <= set(expected_one)

    # Tenant two as a whole, through the API (the worker then runs what it queued): every
    # network's removal, its primary overlay's too, and nothing else.
    expected_two = _expected_removals(two)
    sent.clear()
    answer = run(_admin().delete, url("tenants", two))
    assert answer.status_code == 204, answer.data
    assert _removals(sent) == expected_two
    assert {task for task, _, _ in sent()} == {names.REMOVE_DHCP_SERVER}
    # The same message a network deletion sends: same task, node and spec fields.
    assert {(n, tuple(json.loads(s))) for n, _, s in _removals(sent)} >= {
        (n, tuple(json.loads(s))) for n, _, s in one_by_one
    }
    assert not Tenant.objects.filter(pk=two.pk).exists()
    assert not Network.objects.filter(tenant_id=two.pk).exists()

    # Once the network node confirms, nothing of tenant two is left on it.
    keys = [key for _, key, _ in _removals(sent)]
    vfs = [s.vf_id for s in DhcpServer.objects.filter(network_key__in=keys) if s.vf_id]
    assert len(vfs) == 2  # data and dyn; the overlay's server has a veth, no VF
    _report_removed(run, sent)
    assert not DhcpServer.objects.filter(network_key__in=keys).exists()
    assert set(VirtualFunction.objects.filter(pk__in=vfs).values_list("state", flat=True)) == {
        VfState.FREE
    }


def test_deleting_a_tenant_with_instances_is_409_and_removes_nothing(cluster, run, sent):
    tenant = _tenant_with_networks(run, "one", 400, 41)
    _launch(run, tenant, "web", Network.objects.get(tenant=tenant, name="data"))
    networks = Network.objects.filter(tenant=tenant).count()
    sent.clear()
    answer = run(_admin().delete, url("tenants", tenant))
    assert answer.status_code == 409
    assert "in use by 1 instance" in answer.data["detail"]
    assert Network.objects.filter(tenant=tenant).count() == networks
    assert DhcpServer.objects.filter(network__tenant=tenant).count() == 3
    assert _removals(sent) == []


def test_a_tenant_whose_shared_network_another_tenant_uses_is_409(cluster, run, sent):
    """A tenant's network that an admin shared may carry other tenants' instances: the
    tenant cannot go while they are attached (its network's deletion refuses)."""
    owner, user = create_tenant("owner"), create_tenant("user")
    lent = _network(run, owner, "lent", 420, "10.43.1.0/24", shared=True)
    _launch(run, user, "web", lent)
    sent.clear()
    answer = run(_admin().delete, url("tenants", owner))
    assert answer.status_code == 409 and "in use" in answer.data["detail"]
    assert Tenant.objects.filter(pk=owner.pk).exists() and _removals(sent) == []


# --- 4. network changes reach the running DHCP server -------------------------------------


def _ensures(sent, network) -> list[tuple]:
    return [
        (node, kwargs["spec"])
        for task, node, kwargs in sent()
        if task == names.ENSURE_DHCP_SERVER and kwargs["spec"]["network_id"] == str(network.pk)
    ]


def test_an_update_sends_the_new_spec_to_the_networks_server(cluster, run, sent):
    tenant = create_tenant("acme")
    network = _network(run, tenant, "data", 400, "10.41.1.0/24")
    server = DhcpServer.objects.get(network=network)
    sent.clear()
    changes = {"dns_domain": "renamed.test", "cidr": "10.41.8.0/24", "gateway": "10.41.8.1"}
    changes["vlan"] = 444
    answer = run(_admin().patch, url("networks", network), changes, format="json")
    assert answer.status_code == 200, answer.data  # the worker then ran network_changed
    [(node, spec)] = _ensures(sent, network)
    assert node == server.host.name
    assert (spec["dns_domain"], spec["cidr"], spec["server_ip"], spec["vlan"]) == (
        "renamed.test",
        "10.41.8.0/24",
        "10.41.8.254",
        444,
    )
    assert spec["vf"]["index"] == server.vf.index and spec["mac"] == server.mac  # same server
    server.vf.refresh_from_db()
    assert server.vf.vlan == 444

    sent.clear()
    run(update_network, Network.objects.get(pk=network.pk), {"ipam": "dynamic"})
    [(_, spec)] = _ensures(sent, network)
    assert spec["ipam"] == "dynamic" and spec["reservations"] == []


def test_a_network_that_no_longer_wants_its_server_has_it_removed(cluster, run, sent):
    tenant = create_tenant("acme")
    network = _network(run, tenant, "data", 400, "10.41.1.0/24")
    server = DhcpServer.objects.get(network=network)
    sent.clear()
    run(update_network, Network.objects.get(pk=network.pk), {"ipam": "underlay"})
    assert _ensures(sent, network) == []
    assert _removals(sent) == [_removal(server)]
    _report_removed(run, sent)
    assert not DhcpServer.objects.filter(network_key=network.pk).exists()
    server.vf.refresh_from_db()
    assert server.vf.state == VfState.FREE


def test_a_network_moved_to_another_physnet_gets_a_server_there(cluster, run, sent):
    tenant = create_tenant("acme")
    network = _network(run, tenant, "data", 400, "10.41.1.0/24")
    old = DhcpServer.objects.select_related("vf__pf").get(network=network)
    assert old.vf.pf.physnet == "physnet1"
    sent.clear()
    run(update_network, Network.objects.get(pk=network.pk), {"physnet": "physnet2"})
    assert [k for _, k, _ in _removals(sent)] == [str(network.pk)] and not _ensures(sent, network)
    sent.clear()
    run(results.dhcp_server_applied, "netnode", str(network.pk), True, "", "", removed=True)
    new = DhcpServer.objects.select_related("vf__pf").get(network=network)
    assert new.vf.pf.physnet == "physnet2" and new.pk != old.pk
    [(_, spec)] = _ensures(sent, network)
    assert spec["vf"]["index"] == new.vf.index and spec["vlan"] == 400
    old.vf.refresh_from_db()
    assert old.vf.state == VfState.FREE
