"""Tenant isolation over every endpoint: a member of tenant A gets 404 for each of tenant B's
objects whatever the method (the same answer as for an id that does not exist, so nothing
leaks), 403 on admin-only collections, and 403 when it sets `tenant`, `host` or `shared`."""

import uuid

import pytest
from rest_framework.test import APIClient

from ciaoweb.events.models import Event
from ciaoweb.instances.models import Attachment
from ciaoweb.networks.models import Lease
from ciaoweb.operations.models import Operation
from tests.api.helpers import url

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def lease_b(world):
    attachment = Attachment.objects.filter(instance=world.inst_b, network=world.net_b).get()
    return Lease.objects.create(
        network=world.net_b,
        mac=attachment.mac,
        ip="192.168.10.9",
        hostname="web",
        attachment=attachment,
    )


def objects_of_b(world, lease_b) -> dict[str, str]:
    """collection -> one of tenant B's object ids."""
    attachment = Attachment.objects.filter(instance=world.inst_b).first()
    event = Event.objects.filter(tenant=world.tenant_b).first()
    return {
        "tenants": str(world.tenant_b.pk),
        "networks": str(world.net_b.pk),
        "instances": str(world.inst_b.pk),
        "attachments": str(attachment.pk),
        "leases": str(lease_b.pk),
        "events": str(event.pk),
        "operations": str(Operation.objects.filter(tenant=world.tenant_b).first().pk),
    }


COLLECTIONS = ("tenants", "networks", "instances", "attachments", "leases", "events", "operations")
# (collection, method, action): every route a member can reach with an object id.
DETAIL_ROUTES = [
    (collection, method, None)
    for collection in COLLECTIONS
    for method in ("get", "put", "patch", "delete")
] + [
    ("tenants", "get", "members"),
    ("tenants", "post", "members"),
    ("tenants", "get", "quota"),
    ("tenants", "put", "quota"),
    ("instances", "post", "migrate"),
]
BODIES = {
    "tenants": {"name": "stolen"},
    "networks": {"name": "stolen", "mtu": 1400},
    "instances": {},
    "members": {"username": "mallory", "password": "long-enough-pw", "role": "admin"},
    "quota": {"networks": 1000, "instances": 1000, "vfs": 1000},
    "migrate": {},
}


def call(client, method, path, body):
    return (
        getattr(client, method)(path, body, format="json") if method != "get" else client.get(path)
    )


@pytest.mark.parametrize("who", ["alice", "carol"])  # a member and a tenant admin of A
def test_every_object_of_another_tenant_is_a_404(world, lease_b, who):
    client = getattr(world, who)
    theirs = objects_of_b(world, lease_b)
    leaks = []
    for collection, method, action in DETAIL_ROUTES:
        body = BODIES.get(action or collection, {})
        answer = call(client, method, url(collection, theirs[collection], action), body)
        # The same answer as for an id that does not exist: 404, or 405 where the route
        # has no such method at all (e.g. PUT on instances) — never 200, 403 or 409.
        missing = call(client, method, url(collection, MISSING, action), body)
        if answer.status_code not in (404, 405) or answer.status_code != missing.status_code:
            leaks.append((method, collection, action, answer.status_code, missing.status_code))
        if answer.status_code == 404 and answer.json() != missing.json():
            leaks.append((method, collection, action, "body differs", answer.json()))
    assert leaks == []
    # Nothing of B changed.
    world.tenant_b.refresh_from_db()
    world.net_b.refresh_from_db()
    world.inst_b.refresh_from_db()
    assert world.tenant_b.name == "tenant-b" and world.net_b.name == "data"
    assert world.inst_b.state == "pending" and Lease.objects.filter(pk=lease_b.pk).exists()
    assert not world.tenant_b.memberships.filter(user__username="mallory").exists()


def test_the_same_routes_work_on_the_members_own_objects(world):
    """The control for the test above: the routes exist and answer a member for its tenant."""
    assert world.alice.get(url("tenants", world.tenant_a)).status_code == 200
    assert world.alice.get(url("networks", world.net_a)).status_code == 200
    assert (
        world.alice.patch(url("networks", world.net_a), {"mtu": 1400}, format="json").status_code
        == 200
    )
    assert world.alice.get(url("instances", world.inst_a)).status_code == 200
    assert (
        world.alice.post(url("instances", world.inst_a, "migrate"), {}, format="json").status_code
        == 409
    )  # pending: reached the service
    assert (
        world.carol.post(
            url("tenants", world.tenant_a, "members"), BODIES["members"], format="json"
        ).status_code
        == 201
    )
    assert world.alice.delete(url("instances", world.inst_a)).status_code == 204


def test_lists_show_nothing_of_another_tenant(world, lease_b):
    theirs = set(objects_of_b(world, lease_b).values())
    theirs |= {
        str(pk)
        for pk in Attachment.objects.filter(instance=world.inst_b).values_list("pk", flat=True)
    }
    theirs |= {
        str(pk) for pk in Event.objects.filter(tenant=world.tenant_b).values_list("pk", flat=True)
    }
    for collection in COLLECTIONS:
        for query in (
            "",
            f"?tenant={world.tenant_b.pk}",
            f"?network={world.net_b.pk}",
            f"?instance={world.inst_b.pk}",
        ):
            answer = world.alice.get(f"{url(collection)}{query}")
            if query and answer.status_code == 400:
                continue  # a filter this collection does not accept with that value
            assert answer.status_code == 200, (collection, query, answer.status_code)
            rows = answer.json()["results"]
            seen = {row["id"] for row in rows}
            assert not seen & theirs, (collection, query)
            assert all(row.get("tenant") in (None, str(world.tenant_a.pk)) for row in rows)
    # cluster-wide events (hosts) are admin-only
    events = world.alice.get(url("events")).json()["results"]
    assert events, "tenant a has events of its own (its tenant, network and instance)"
    assert all(e["tenant"] == str(world.tenant_a.pk) for e in events)


@pytest.mark.parametrize("collection", ["hosts", "physical-functions", "virtual-functions"])
def test_admin_collections_are_a_403_for_members(world, collection):
    from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction

    model = {
        "hosts": Host,
        "physical-functions": PhysicalFunction,
        "virtual-functions": VirtualFunction,
    }[collection]
    some = str(model.objects.first().pk)
    for client in (world.alice, world.carol):
        assert client.get(url(collection)).status_code == 403
        assert client.get(url(collection, some)).status_code == 403
        # Admin-only collections are a 403 (DESIGN.md §3), whatever the method: the
        # permission is checked before the method, so a read-only route is no 405 either.
        assert client.post(url(collection), {"name": "evil"}, format="json").status_code == 403
        assert client.patch(url(collection, some), {"name": "x"}, format="json").status_code == 403
        assert client.delete(url(collection, some)).status_code == 403
    if collection == "hosts":
        for action in ("evacuate", "restore"):
            assert world.alice.post(url("hosts", some, action)).status_code == 403
    assert world.admin.get(url(collection, some)).status_code == 200


def test_members_cannot_write_tenants_or_shared_networks(world):
    assert world.alice.post(url("tenants"), {"name": "mine"}, format="json").status_code == 403
    assert (
        world.alice.patch(url("tenants", world.tenant_a), {"name": "x"}, format="json").status_code
        == 403
    )
    assert world.alice.delete(url("tenants", world.tenant_a)).status_code == 403
    # a plain member may not add members, even to its own tenant
    assert (
        world.alice.post(
            url("tenants", world.tenant_a, "members"), BODIES["members"], format="json"
        ).status_code
        == 403
    )
    assert world.alice.get(url("networks", world.shared)).status_code == 200
    assert (
        world.alice.patch(url("networks", world.shared), {"mtu": 1400}, format="json").status_code
        == 403
    )
    assert world.alice.delete(url("networks", world.shared)).status_code == 403


def test_members_cannot_set_tenant_host_or_shared(world):
    net = str(world.net_a.pk)
    cases = [
        (
            "instances",
            {
                "name": "x1",
                "kind": "vm",
                "networks": [{"network": net}],
                "tenant": str(world.tenant_b.pk),
            },
        ),
        (
            "instances",
            {
                "name": "x1",
                "kind": "vm",
                "networks": [{"network": net}],
                "tenant": str(world.tenant_a.pk),
            },
        ),
        (
            "instances",
            {"name": "x1", "kind": "vm", "networks": [{"network": net}], "host": "node1"},
        ),
        (
            "networks",
            {
                "name": "x1",
                "kind": "sriov",
                "physnet": "physnet2",
                "cidr": "10.9.0.0/24",
                "tenant": str(world.tenant_b.pk),
            },
        ),
        (
            "networks",
            {
                "name": "x1",
                "kind": "sriov",
                "physnet": "physnet2",
                "cidr": "10.9.0.0/24",
                "shared": True,
            },
        ),
    ]
    for collection, body in cases:
        answer = world.alice.post(url(collection), body, format="json")
        assert answer.status_code == 403, (collection, body, answer.status_code)
    answer = world.alice.patch(
        url("networks", world.net_a), {"tenant": str(world.tenant_b.pk)}, format="json"
    )
    assert answer.status_code == 403
    answer = world.alice.patch(url("networks", world.net_a), {"shared": True}, format="json")
    assert answer.status_code == 403
    answer = world.alice.post(
        url("instances", world.inst_a, "migrate"), {"host": "node2"}, format="json"
    )
    assert answer.status_code == 403
    world.net_a.refresh_from_db()
    assert world.net_a.tenant_id == world.tenant_a.pk and not world.net_a.shared


def test_another_tenants_network_cannot_be_attached(world):
    """Naming B's network in an instance is the same 400 as naming one that does not exist."""

    def attach(network_id):
        body = {"name": "x1", "kind": "container", "networks": [{"network": network_id}]}
        return world.alice.post(url("instances"), body, format="json")

    missing_id = str(uuid.uuid4())
    theirs, missing = attach(str(world.net_b.pk)), attach(missing_id)
    assert theirs.status_code == missing.status_code == 400
    assert str(theirs.json()).replace(str(world.net_b.pk), "ID") == str(missing.json()).replace(
        missing_id, "ID"
    )
    assert attach(str(world.shared.pk)).status_code == 201  # shared networks are usable


def test_users_without_a_tenant_see_nothing(world):
    from django.contrib.auth import get_user_model

    loner = get_user_model().objects.create_user("loner", password="long-enough-pw")
    client = APIClient()
    client.force_authenticate(loner)
    for collection in ("tenants", "instances", "attachments", "leases", "events"):
        answer = client.get(url(collection))
        assert answer.status_code == 200 and answer.json()["count"] == 0, collection
    # only shared networks
    assert {n["id"] for n in client.get(url("networks")).json()["results"]} == {
        str(world.shared.pk)
    }
    answer = client.post(url("instances"), {"name": "x1", "kind": "vm"}, format="json")
    assert answer.status_code == 403
