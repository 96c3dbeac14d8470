"""Tenant limits and provider attributes (issue 15; docs/security.md, "Tenant limits and
provider attributes"): members never choose a VLAN, underlay networks are admins', a bad
VLAN range is refused at start-up and never turns a request into a 500, and per-tenant
quotas hold, also under concurrent creations on PostgreSQL."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.core.checks import run_checks
from django.db import connection, connections
from django.test import override_settings
from rest_framework.test import APIClient

from ciaoweb.core.exceptions import Conflict
from ciaoweb.events.models import Event
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import delete_instance, finalize_instance_deletion
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.models import IPAllocation, Network
from ciaoweb.networks.services import create_network
from ciaoweb.operations.models import Operation
from ciaoweb.orchestration import dhcp
from ciaoweb.orchestration.choices import DhcpServerState
from ciaoweb.orchestration.models import DhcpServer
from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.quotas import check_quota, quota_of
from ciaoweb.tenancy.services import add_member, create_tenant
from tests.api.helpers import inventory, url

NEW_NETWORK = {"name": "storage", "kind": "sriov", "physnet": "physnet2", "cidr": "10.9.0.0/24"}
QUOTA_DEFAULTS = {"CIAO_QUOTA_NETWORKS": 20, "CIAO_QUOTA_INSTANCES": 200, "CIAO_QUOTA_VFS": 400}


@pytest.fixture(autouse=True)
def known_defaults(settings):
    for name, value in QUOTA_DEFAULTS.items():
        setattr(settings, name, value)


def rows() -> dict[str, int]:
    """How many rows of everything a creation makes (nothing partial may stay)."""
    return {
        "networks": Network.objects.count(),
        "instances": Instance.objects.count(),
        "attachments": Attachment.objects.count(),
        "operations": Operation.objects.count(),
        "ip_allocations": IPAllocation.objects.count(),
        "events": Event.objects.count(),
        "free_vfs": VirtualFunction.objects.filter(state="free").count(),
    }


def quota_url(tenant) -> str:
    return url("tenants", tenant, "quota")


# --- provider attributes: vlan and ipam=underlay ---------------------------------------


@pytest.mark.parametrize("vlan", [150, 100, 4000, 0, "150", [100]])
def test_a_member_setting_a_vlan_is_403_and_creates_nothing(world, vlan):
    before = rows()
    for client in (world.alice, world.carol):  # a tenant admin is a member too
        answer = client.post(url("networks"), {**NEW_NETWORK, "vlan": vlan}, format="json")
        assert answer.status_code == 403, answer.data
        assert "only cluster administrators may set vlan" in answer.data["detail"]
        # Nothing about who uses a VLAN leaks (tenant b's `data` is on VLAN 101).
        assert "tenant-b" not in answer.data["detail"]
    assert rows() == before


def test_a_members_network_gets_its_vlan_from_the_tenant_range(world, settings):
    settings.CIAO_VLAN_RANGES = "physnet2:700:701"
    first = world.alice.post(url("networks"), NEW_NETWORK, format="json")
    second = {**NEW_NETWORK, "name": "s2", "cidr": "10.8.0.0/24", "vlan": None}  # null: allocate
    second = world.alice.post(url("networks"), second, format="json")
    assert (first.status_code, second.status_code) == (201, 201), (first.data, second.data)
    assert (first.data["vlan"], second.data["vlan"]) == (700, 701)


def test_a_member_may_not_change_the_vlan_but_may_send_it_back(world):
    net = world.net_a
    answer = world.alice.patch(url("networks", net), {"vlan": 150}, format="json")
    assert answer.status_code == 403
    assert Network.objects.get(pk=net.pk).vlan == 100
    # A PUT of what GET returned carries the current VLAN: that is not choosing one.
    current = world.alice.get(url("networks", net)).data
    body = {k: v for k, v in current.items() if k not in ("id", "tenant", "shared")}
    answer = world.alice.put(url("networks", net), {**body, "mtu": 1400}, format="json")
    assert answer.status_code == 200, answer.data
    assert (answer.data["vlan"], answer.data["mtu"]) == (100, 1400)


def test_a_member_moving_its_network_to_another_physnet_gets_that_ones_range(world, settings):
    settings.CIAO_VLAN_RANGES = "physnet2:800:809"
    made = world.alice.post(
        url("networks"), {**NEW_NETWORK, "physnet": "physnet1"}, format="json"
    ).data
    assert made["vlan"] == 102  # physnet1: the default range, 100 and 101 taken
    answer = world.alice.patch(url("networks", made["id"]), {"physnet": "physnet2"}, format="json")
    assert answer.status_code == 200, answer.data
    assert (answer.data["physnet"], answer.data["vlan"]) == ("physnet2", 800)


def test_a_member_creating_an_underlay_network_is_403(world):
    before = rows()
    for extra in ({}, {"vlan": 300}):
        body = {**NEW_NETWORK, "ipam": "underlay", **extra}
        answer = world.alice.post(url("networks"), body, format="json")
        assert answer.status_code == 403
        assert "underlay" in answer.data["detail"] or "vlan" in answer.data["detail"]
    answer = world.alice.patch(url("networks", world.net_a), {"ipam": "underlay"}, format="json")
    assert answer.status_code == 403 and "underlay" in answer.data["detail"]
    assert rows() == before
    assert Network.objects.get(pk=world.net_a.pk).ipam == "controller"


def test_an_admin_sets_any_vlan_and_makes_underlay_networks(world, settings):
    settings.CIAO_VLAN_RANGES = "physnet2:700:701"
    tenant = str(world.tenant_a.pk)
    provider = {**NEW_NETWORK, "tenant": tenant, "vlan": 4000}  # outside the tenant range
    answer = world.admin.post(url("networks"), provider, format="json")
    assert answer.status_code == 201 and answer.data["vlan"] == 4000
    underlay = {**NEW_NETWORK, "name": "campus", "cidr": "10.8.0.0/24", "ipam": "underlay"}
    answer = world.admin.post(url("networks"), {**underlay, "tenant": tenant}, format="json")
    assert answer.status_code == 400 and "explicit VLAN" in answer.data["vlan"][0]
    body = {**underlay, "tenant": tenant, "vlan": 30}
    answer = world.admin.post(url("networks"), body, format="json")
    assert answer.status_code == 201 and (answer.data["ipam"], answer.data["vlan"]) == (
        "underlay",
        30,
    )
    # and may change the VLAN of a tenant's network not in use (a provider decision)
    made = Network.objects.get(tenant=world.tenant_a, vlan=4000)
    answer = world.admin.patch(url("networks", made), {"vlan": 3000}, format="json")
    assert answer.status_code == 200 and answer.data["vlan"] == 3000


# --- VLAN range settings: refused at start-up, never a 500 ------------------------------


def _errors(**overrides) -> list:
    with override_settings(**overrides):
        return [m for m in run_checks(tags=["ciaoweb"]) if m.is_serious()]


@pytest.mark.parametrize(
    ("overrides", "setting", "item"),
    [
        ({"CIAO_VLAN_RANGES": "physnet1:100-199"}, "CIAO_VLAN_RANGES", "physnet1:100-199"),
        ({"CIAO_VLAN_RANGES": "physnet1:100:199,physnet2"}, "CIAO_VLAN_RANGES", "physnet2"),
        ({"CIAO_VLAN_RANGES": "physnet1:300:200"}, "CIAO_VLAN_RANGES", "physnet1:300:200"),
        ({"CIAO_VLAN_RANGES": "physnet1:0:5000"}, "CIAO_VLAN_RANGES", "physnet1:0:5000"),
        ({"CIAO_VLAN_RANGES": "p:1:2,p:3:4"}, "CIAO_VLAN_RANGES", "listed twice"),
        ({"CIAO_VLAN_RANGES": ":100:199"}, "CIAO_VLAN_RANGES", ":100:199"),
        ({"CIAO_VLAN_DEFAULT_RANGE": "100"}, "CIAO_VLAN_DEFAULT_RANGE", "100"),
        ({"CIAO_VLAN_DEFAULT_RANGE": "a:b"}, "CIAO_VLAN_DEFAULT_RANGE", "a:b"),
        ({"CIAO_QUOTA_NETWORKS": -1}, "CIAO_QUOTA_NETWORKS", "-1"),
        ({"CIAO_QUOTA_VFS": "many"}, "CIAO_QUOTA_VFS", "many"),
    ],
)
def test_the_start_up_check_refuses_a_bad_setting_naming_it_and_the_item(overrides, setting, item):
    [error] = _errors(**overrides)
    assert error.msg.startswith(f"{setting} is invalid")
    assert item in error.msg
    assert error.id in ("networks.E001", "tenancy.E001")


def test_the_start_up_check_accepts_good_settings():
    good = {
        "CIAO_VLAN_RANGES": " physnet1:100:199 , physnet2:200:299,",
        "CIAO_VLAN_DEFAULT_RANGE": "1:4094",
        "CIAO_QUOTA_NETWORKS": 0,
    }
    assert _errors(**good) == []


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"CIAO_VLAN_RANGES": "physnet2:100-199"}, "CIAO_VLAN_RANGES"),
        ({"CIAO_VLAN_DEFAULT_RANGE": "100-3999"}, "CIAO_VLAN_DEFAULT_RANGE"),
    ],
)
def test_a_bad_range_that_reaches_a_request_is_a_409_naming_the_setting(world, overrides, setting):
    before = rows()
    with override_settings(**overrides):
        answer = world.alice.post(url("networks"), NEW_NETWORK, format="json")
        assert answer.status_code == 409, answer.content
        assert setting in answer.data["detail"] and "misconfigured" in answer.data["detail"]
        assert rows() == before
        # A request that needs no allocation (an admin's explicit VLAN) still works.
        body = {**NEW_NETWORK, "tenant": str(world.tenant_a.pk), "vlan": 555}
        assert world.admin.post(url("networks"), body, format="json").status_code == 201


# --- quotas: the API ----------------------------------------------------------------------


def test_members_and_admins_read_their_tenants_quota(world):
    expected = {
        "networks": 20,
        "instances": 200,
        "vfs": 400,
        "used": {"networks": 1, "instances": 1, "vfs": 1},  # `data` (not `default`), `web`
    }
    for client in (world.alice, world.carol, world.admin):
        answer = client.get(quota_url(world.tenant_a))
        assert answer.status_code == 200, answer.data
        assert answer.json() == expected
    assert world.bob.get(quota_url(world.tenant_a)).status_code == 404  # another tenant's
    assert world.bob.put(quota_url(world.tenant_a), {}, format="json").status_code == 404
    assert APIClient().get(quota_url(world.tenant_a)).status_code == 401


def test_only_admins_change_quotas_and_it_is_audited(world):
    limits = {"networks": 3, "instances": 4, "vfs": 5}
    for client in (world.alice, world.carol):
        answer = client.put(quota_url(world.tenant_a), limits, format="json")
        assert answer.status_code == 403
        assert "only cluster administrators change quotas" in answer.data["detail"]
    assert Tenant.objects.get(pk=world.tenant_a.pk).quota_networks is None
    answer = world.admin.put(quota_url(world.tenant_a), limits, format="json")
    assert answer.status_code == 200
    assert answer.json() == {**limits, "used": {"networks": 1, "instances": 1, "vfs": 1}}
    answer = world.admin.patch(quota_url(world.tenant_a), {"vfs": 6}, format="json")
    assert answer.status_code == 200 and answer.data["vfs"] == 6 and answer.data["networks"] == 3
    event = Event.objects.filter(kind="tenant.quota_changed").order_by("created").last()
    assert event.tenant_id == world.tenant_a.pk and "vfs 5 -> 6" in event.message
    assert world.alice.get(quota_url(world.tenant_a)).data["vfs"] == 6  # the member sees it
    assert quota_of(world.tenant_b)["networks"] == 20  # tenant b keeps the defaults


@pytest.mark.parametrize("value", [-1, "x", 1.5, True, None, 10**7, [3], {"n": 3}, "", 2**63])
def test_a_bad_quota_value_is_a_400_on_its_field(world, value):
    limits = {"networks": 3, "instances": 4, "vfs": value}
    answer = world.admin.put(quota_url(world.tenant_a), limits, format="json")
    assert answer.status_code == 400, (value, answer.data)
    assert list(answer.data) == ["vfs"] and answer.data["vfs"]
    assert Tenant.objects.get(pk=world.tenant_a.pk).quota_networks is None  # nothing saved


def test_a_put_needs_every_limit(world):
    answer = world.admin.put(quota_url(world.tenant_a), {"networks": 3}, format="json")
    assert answer.status_code == 400 and set(answer.data) == {"instances", "vfs"}


# --- quotas: enforcement ------------------------------------------------------------------


def test_over_the_networks_quota_is_409_and_creates_nothing(world):
    world.admin.patch(quota_url(world.tenant_a), {"networks": 1}, format="json")
    before = rows()
    answer = world.alice.post(url("networks"), NEW_NETWORK, format="json")
    assert answer.status_code == 409
    assert answer.data["detail"].startswith("quota exceeded: networks limit 1, in use 1")
    body = {**NEW_NETWORK, "tenant": str(world.tenant_a.pk)}  # the tenant's limit, whoever asks
    assert world.admin.post(url("networks"), body, format="json").status_code == 409
    assert rows() == before
    # Shared networks belong to no tenant; other tenants are not affected.
    shared = {**NEW_NETWORK, "name": "pool", "shared": True}
    assert world.admin.post(url("networks"), shared, format="json").status_code == 201
    other = world.bob.post(url("networks"), {**NEW_NETWORK, "cidr": "10.7.0.0/24"}, format="json")
    assert other.status_code == 201


def test_a_tenants_primary_network_is_never_refused(world, settings):
    settings.CIAO_QUOTA_NETWORKS = 0
    answer = world.admin.post(url("tenants"), {"name": "tenant-c"}, format="json")
    assert answer.status_code == 201
    tenant = Tenant.objects.get(name="tenant-c")
    assert tenant.networks.filter(is_primary=True).count() == 1
    assert quota_of(tenant)["used"]["networks"] == 0


def test_networks_past_the_network_nodes_dhcp_capacity_are_409_and_create_nothing(world):
    """One tenant must not use up the network node's VFs and leave the next tenant's
    managed network without a DHCP server: past the capacity a creation is a 409."""
    netnode = {**inventory("netnode", {"physnet2": 2}), "is_network_node": True}
    register_inventory("netnode", netnode)
    first = world.alice.post(url("networks"), NEW_NETWORK, format="json")
    assert first.status_code == 201
    second = {**NEW_NETWORK, "cidr": "10.7.0.0/24"}
    assert world.bob.post(url("networks"), second, format="json").status_code == 201
    before = rows()
    third = {**NEW_NETWORK, "name": "more", "cidr": "10.8.0.0/24"}
    answer = world.bob.post(url("networks"), third, format="json")
    assert answer.status_code == 409
    assert "no VF left on physnet2 for this network's DHCP server" in answer.data["detail"]
    assert "tenant-a" not in answer.data["detail"]
    assert rows() == before
    # Placed servers hold the VFs the waiting networks were promised: still full.
    for network in Network.objects.filter(physnet="physnet2"):
        assert dhcp._place(network) is not None
    assert world.bob.post(url("networks"), third, format="json").status_code == 409
    # Networks without a server of ours (the underlay's DHCP) need no VF.
    underlay = {**third, "ipam": "underlay", "vlan": 300, "tenant": str(world.tenant_b.pk)}
    assert world.admin.post(url("networks"), underlay, format="json").status_code == 201
    # A deleted network's server being removed gives its VF back.
    DhcpServer.objects.filter(network_key=first.data["id"]).update(state=DhcpServerState.REMOVING)
    third.update(name="again", cidr="10.6.0.0/24")
    assert world.bob.post(url("networks"), third, format="json").status_code == 201


def _instance(client, world, name="probe", networks=None, **extra):
    nets = networks if networks is not None else [world.net_a]
    body = {"name": name, "kind": "container", "networks": [{"network": str(n.pk)} for n in nets]}
    return client.post(url("instances"), {**body, **extra}, format="json")


def test_over_the_instances_quota_is_409_and_leaves_nothing_behind(world):
    world.admin.patch(quota_url(world.tenant_a), {"instances": 1}, format="json")
    before = rows()
    answer = _instance(world.alice, world)
    assert answer.status_code == 409
    assert answer.data["detail"].startswith("quota exceeded: instances limit 1, in use 1")
    answer = _instance(world.admin, world, tenant=str(world.tenant_a.pk))
    assert answer.status_code == 409
    assert rows() == before  # no instance, attachment, operation, IP, event; no VF taken
    assert not Instance.objects.filter(name="probe").exists()


def test_over_the_vfs_quota_is_409_and_counts_every_sriov_attachment(world):
    world.admin.patch(quota_url(world.tenant_a), {"vfs": 2}, format="json")
    before = rows()
    answer = _instance(world.alice, world, networks=[world.net_a, world.shared])  # 2 VFs
    assert answer.status_code == 409
    assert answer.data["detail"].startswith(
        "quota exceeded: vfs limit 2, in use 1, this request needs 2"
    )
    assert rows() == before
    assert _instance(world.alice, world).status_code == 201  # 1 VF: fits exactly
    assert quota_of(world.tenant_a)["used"] == {"networks": 1, "instances": 2, "vfs": 2}
    # eth0 on the overlay takes no VF: an instance on `default` alone still fits
    assert _instance(world.alice, world, name="plain", networks=[]).status_code == 201


def test_a_deleted_instance_frees_its_quota_once_it_is_gone(world):
    world.admin.patch(quota_url(world.tenant_a), {"instances": 1}, format="json")
    delete_instance(world.inst_a)
    assert _instance(world.alice, world).status_code == 409  # still holds its VF and IPs
    finalize_instance_deletion(world.inst_a.pk)
    assert _instance(world.alice, world).status_code == 201


def test_the_check_is_the_hook_for_other_vf_claims(world):
    """Hot-plug attach (to come) calls the same check inside its transaction."""
    world.admin.patch(quota_url(world.tenant_a), {"vfs": 1}, format="json")
    with pytest.raises(Conflict, match="quota exceeded: vfs limit 1, in use 1"):
        check_quota(world.tenant_a, vfs=1)
    assert check_quota(world.tenant_a, instances=1).pk == world.tenant_a.pk


# --- quotas under concurrency (PostgreSQL) -------------------------------------------------

THREADS, QUOTA = 12, 5

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
)


def _busy_tenant(with_network: bool = True):
    """A tenant with a member, 16 VFs (capacity is never what refuses) and a network."""
    tenant = create_tenant("busy")
    user = add_member(tenant, "busy-user", "pw-busy-1", MembershipRole.MEMBER).user
    for n in range(4):
        register_inventory(f"node{n}", inventory(f"node{n}", {"physnet1": 4}))
    network = None
    if with_network:
        network = create_network(
            tenant=tenant, name="data", kind="sriov", physnet="physnet1", cidr="192.168.0.0/24"
        )
    return tenant, user, network


def _all_at_once(user, bodies: list[tuple[str, dict]]) -> list[tuple[int, dict]]:
    """Every request from its own thread and connection, released together."""
    start = Barrier(len(bodies))

    def send(item: tuple[str, dict]) -> tuple[int, dict]:
        path, body = item
        try:
            client = APIClient()
            client.force_authenticate(user)
            start.wait()
            answer = client.post(path, body, format="json")
            return answer.status_code, answer.json()
        finally:
            connections.close_all()  # each thread used its own connection

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(send, bodies))


def _assert_exactly_the_quota_made(results: list[tuple[int, dict]], quota: str) -> None:
    """QUOTA creations answered 201, every other one a 409 naming the quota, its limit
    and its use."""
    assert Counter(status for status, _ in results) == {201: QUOTA, 409: THREADS - QUOTA}
    for status, data in results:
        if status == 409:
            assert data["detail"].startswith(
                f"quota exceeded: {quota} limit {QUOTA}, in use {QUOTA}"
            ), data


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_instance_creations_stop_exactly_at_the_quota():
    tenant, user, network = _busy_tenant()
    Tenant.objects.filter(pk=tenant.pk).update(quota_instances=QUOTA)
    bodies = [
        (
            url("instances"),
            {"name": f"i{n}", "kind": "container", "networks": [{"network": str(network.pk)}]},
        )
        for n in range(THREADS)
    ]
    results = _all_at_once(user, bodies)

    _assert_exactly_the_quota_made(results, "instances")
    made = Instance.objects.filter(tenant=tenant)
    assert made.count() == QUOTA
    assert Attachment.objects.filter(instance__tenant=tenant).count() == 2 * QUOTA  # eth0, eth1
    assert Operation.objects.filter(instance__tenant=tenant).count() == QUOTA
    assert Attachment.objects.filter(instance__tenant=tenant, vf__isnull=False).count() == QUOTA
    assert VirtualFunction.objects.exclude(state="free").count() == QUOTA
    assert IPAllocation.objects.filter(purpose="attachment").count() == 2 * QUOTA
    assert Event.objects.filter(kind="instance.created").count() == QUOTA
    assert quota_of(tenant)["used"] == {"networks": 1, "instances": QUOTA, "vfs": QUOTA}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_network_creations_stop_exactly_at_the_quota():
    tenant, user, _ = _busy_tenant(with_network=False)
    Tenant.objects.filter(pk=tenant.pk).update(quota_networks=QUOTA)
    bodies = [
        (
            url("networks"),
            {"name": f"n{n}", "kind": "sriov", "physnet": "physnet1", "cidr": f"10.{n}.0.0/24"},
        )
        for n in range(THREADS)
    ]
    results = _all_at_once(user, bodies)

    _assert_exactly_the_quota_made(results, "networks")
    networks = Network.objects.filter(tenant=tenant, is_primary=False)
    assert networks.count() == QUOTA
    vlans = list(networks.values_list("vlan", flat=True))
    assert len(set(vlans)) == len(vlans)
    assert Event.objects.filter(kind="network.created", tenant=tenant).count() == QUOTA + 1
