"""Not yours = does not exist (issue 15): a member of tenant A asking about tenant B's
objects gets what it gets for objects that do not exist, in filters, conflict messages,
the members endpoint, dashboard pages and the websocket; and of what tenants share (VFs,
a shared network's leases) a member sees only its own tenant's use. Each test sends the
hostile request as a member of A and checks the refusal and that nothing changed or
leaked. (Objects by id, every method: `test_isolation.py`.)"""

import asyncio
import re
import uuid

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from ciaoweb.events.choices import EventKind
from ciaoweb.events.models import Event
from ciaoweb.instances.api.serializers import MAX_NETWORKS
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import NetworkRequest, create_instance
from ciaoweb.networks.models import Lease
from ciaoweb.networks.services import create_network
from ciaoweb.operations.models import Operation
from ciaoweb.orchestration.results import apply_lease_event
from ciaoweb.tenancy.models import Membership
from ciaoweb.tenancy.quotas import limits
from tests.api.helpers import url
from tests.security.conftest import seed_world, token_for
from tests.security.test_websocket import (
    ORIGIN,
    close_thread_connections,
    communicator,
    drain,
    ids_by_type,
    send_barrier,
    session_cookie,
)

SRIOV = {"kind": "sriov", "ipam": "controller"}


def random_id() -> str:
    return str(uuid.uuid4())


def betrayals(world, *objects) -> list[str]:
    """What would tell a member of A about tenant B: its name and ids, and `objects`'
    names and ids."""
    found = ["tenant-b", str(world.tenant_b.pk), str(world.net_b.pk)]
    found += [
        str(pk)
        for pk in Instance.objects.filter(tenant=world.tenant_b).values_list("pk", flat=True)
    ]
    for obj in objects:
        found += [str(obj.pk), getattr(obj, "name", str(obj.pk))]
    return found


def assert_tells_nothing_of_b(answer, world, *objects) -> None:
    text = answer.content.decode()
    told = [secret for secret in betrayals(world, *objects) if secret in text]
    assert told == [], (told, text)


# --- 1. conflict messages ------------------------------------------------------------------


def test_conflict_messages_a_member_can_trigger_name_nothing_of_another_tenant(world):
    b_net = create_network(
        tenant=world.tenant_b,
        name="b-secret",
        physnet="physnet2",
        vlan=100,
        cidr="10.77.0.0/24",
        **SRIOV,
    )
    b_pool = create_network(
        tenant=world.tenant_b,
        name="b-pool",
        physnet="physnet1",
        vlan=201,
        cidr="10.78.0.0/24",
        shared=True,
        **SRIOV,
    )
    b_there = create_instance(
        tenant=world.tenant_b,
        name="b-box",
        kind="container",
        networks=[NetworkRequest(network=b_pool, ip="10.78.0.10")],
    )
    b_mac = b_there.attachments.get(network=b_pool).mac
    instances_before = Instance.objects.count()

    # The VLAN clash: net_a (VLAN 100 on physnet1) is in use, so moving it to physnet2
    # keeps VLAN 100, which B's network has there. The only member path to that message.
    answer = world.alice.patch(url("networks", world.net_a), {"physnet": "physnet2"}, format="json")
    assert answer.status_code == 400
    assert "VLAN 100 is already used on physnet physnet2" in str(answer.json()["vlan"])
    assert_tells_nothing_of_b(answer, world, b_net, b_pool, b_there)
    world.net_a.refresh_from_db()
    assert world.net_a.physnet == "physnet1" and world.net_a.vlan == 100
    # An admin is told which network holds it (admins see every tenant).
    answer = world.admin.patch(url("networks", world.net_a), {"physnet": "physnet2"}, format="json")
    assert answer.status_code == 400 and "tenant-b/b-secret" in str(answer.json()["vlan"])

    def create(*requests):
        body = {"name": "probe", "kind": "container", "networks": list(requests)}
        return world.alice.post(url("instances"), body, format="json")

    # A MAC B's attachment has, B's shared network listed twice, an IP B holds on it.
    for answer in (
        create({"network": str(world.net_a.pk), "mac": b_mac}),
        create({"network": str(b_pool.pk)}, {"network": str(b_pool.pk)}),
        create({"network": str(b_pool.pk), "ip": "10.78.0.10"}),
    ):
        assert answer.status_code == 400, answer.content
        assert_tells_nothing_of_b(answer, world, b_net, b_there)
    assert Instance.objects.count() == instances_before
    # Names are per tenant: B's names are free for A, so they conflict with nothing.
    answer = world.alice.post(
        url("networks"),
        {"name": "b-secret", "physnet": "physnet2", "cidr": "10.77.0.0/24", **SRIOV},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    # A hostname is unique on a shared network whoever holds it (its DNS answers it to
    # every tenant on it anyway): the 409 names the name and the network, no tenant.
    body = {"name": "b-box", "kind": "container", "networks": [{"network": str(b_pool.pk)}]}
    answer = world.alice.post(url("instances"), body, format="json")
    assert answer.status_code == 409, answer.content
    assert "b-box is taken on shared network b-pool" in answer.content.decode()
    assert_tells_nothing_of_b(answer, world, b_net)
    body["networks"] = [{"network": str(world.net_a.pk)}]
    assert world.alice.post(url("instances"), body, format="json").status_code == 201


# --- 2. filters ----------------------------------------------------------------------------


def filter_cases(world) -> list[tuple[str, str, str]]:
    """(collection, filter, one of B's ids, or a host A has no instance on)."""
    b_attachment = Attachment.objects.filter(instance=world.inst_b).first()
    b_operation = Operation.objects.filter(tenant=world.tenant_b).first()
    a_hosts = set(Instance.objects.filter(tenant=world.tenant_a).values_list("host", flat=True))
    other_host = next(h for h in world.hosts if h.pk not in a_hosts)
    b = world.tenant_b
    return [
        ("instances", "tenant", b.pk),
        ("instances", "host", other_host.pk),
        ("attachments", "instance", world.inst_b.pk),
        ("attachments", "network", world.net_b.pk),
        ("networks", "tenant", b.pk),
        ("leases", "network", world.net_b.pk),
        ("leases", "attachment", b_attachment.pk),
        ("operations", "instance", world.inst_b.pk),
        ("operations", "tenant", b.pk),
        ("operations", "parent", b_operation.pk),
        ("events", "tenant", b.pk),
        ("events", "object_id", world.inst_b.pk),
    ]


@pytest.mark.parametrize("who", ["alice", "carol"])
def test_a_filter_given_another_tenants_id_answers_as_for_a_random_id(world, who):
    client = getattr(world, who)
    differ = []
    for collection, name, theirs in filter_cases(world):
        missing = random_id()
        their_answer = client.get(url(collection), {name: str(theirs)})
        missing_answer = client.get(url(collection), {name: missing})
        same_body = their_answer.content.decode().replace(str(theirs), "ID") == (
            missing_answer.content.decode().replace(missing, "ID")
        )
        if their_answer.status_code != missing_answer.status_code or not same_body:
            differ.append((collection, name, their_answer.status_code, their_answer.content))
        if name == "object_id":  # a free-form id: both an empty list
            assert their_answer.json()["count"] == 0
        else:  # both unknown choices: the filter's 400, naming no value
            assert their_answer.status_code == 400, (collection, name)
            assert name in their_answer.json(), their_answer.content
    assert differ == []


def test_filters_still_take_the_members_own_ids_and_admins_any(world):
    a_attachment = Attachment.objects.filter(instance=world.inst_a).first()
    own = [
        ("instances", "tenant", world.tenant_a.pk),
        ("instances", "host", world.inst_a.host_id),
        ("attachments", "instance", world.inst_a.pk),
        ("attachments", "network", world.shared.pk),  # shared networks are the member's too
        ("networks", "tenant", world.tenant_a.pk),
        ("leases", "network", world.net_a.pk),
        ("leases", "attachment", a_attachment.pk),
        ("operations", "instance", world.inst_a.pk),
        ("events", "tenant", world.tenant_a.pk),
    ]
    for collection, name, value in own:
        answer = world.alice.get(url(collection), {name: str(value)})
        assert answer.status_code == 200, (collection, name, answer.content)
    for collection, name, theirs in filter_cases(world):
        answer = world.admin.get(url(collection), {name: str(theirs)})
        assert answer.status_code == 200, (collection, name, answer.content)
    answer = world.admin.get(url("instances"), {"tenant": str(world.tenant_b.pk)})
    assert [row["id"] for row in answer.json()["results"]] == [str(world.inst_b.pk)]


# --- 3. the members endpoint ---------------------------------------------------------------


def test_adding_an_existing_user_tells_a_tenant_admin_nothing_of_where_it_belongs(world):
    from django.contrib.auth import get_user_model

    loner = get_user_model().objects.create_user("loner", password="secret-loner-pw")
    members = url("tenants", world.tenant_a, "members")
    answers = {}
    for username in ("bob", "root", "loner"):  # tenant B's member, an admin, no tenant
        for password in ("", "long-enough-pw-1"):
            body = {"username": username, "password": password, "role": "admin"}
            answer = world.carol.post(members, body, format="json")
            assert answer.status_code == 400, (username, answer.content)
            answers[(username, password)] = answer.content.decode().replace(username, "NAME")
            assert "tenant" not in answer.content.decode()
            assert "administrator" not in answer.content.decode()
    assert len(set(answers.values())) == 1, answers
    assert "is taken" in next(iter(answers.values()))
    # Nothing changed: bob is still only in B, root and loner in no tenant.
    assert list(Membership.objects.filter(user=world.bob_user).values_list("tenant", "role")) == [
        (world.tenant_b.pk, "member")
    ]
    assert not Membership.objects.filter(user__in=[loner, world.admin_user]).exists()
    # The control: a new name is created, a member of A changes role.
    body = {"username": "dave", "password": "long-enough-pw-1", "role": "member"}
    assert world.carol.post(members, body, format="json").status_code == 201
    body = {"username": "alice", "role": "admin"}
    assert world.carol.post(members, body, format="json").status_code == 201
    # A cluster admin sees every tenant, and is told where bob is.
    answer = world.admin.post(members, {"username": "bob", "role": "member"}, format="json")
    assert answer.status_code == 400 and "tenant-b" in answer.content.decode()


# --- 4. dashboard: VF usage and hardware ---------------------------------------------------


def page(user, path: str) -> str:
    client = Client()
    client.force_login(user)
    answer = client.get(path)
    assert answer.status_code == 200
    return answer.content.decode()


def capacity_figures(body: str) -> list[tuple[str, int, int]]:
    section = body.split('id="capacity-h"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(
        r'bar-label">([^<]*)</span>.*?bar-figure">(\d+)/(\d+)<', section, flags=re.DOTALL
    )
    return [(label, int(used), int(total)) for label, used, total in rows]


HARDWARE = re.compile(r"\bens\d|0000:")  # the PFs' and VFs' names and PCI addresses


def test_members_see_their_own_vf_use_and_no_pf_names_or_pci_addresses(world):
    vf_limit = limits(world.tenant_a)["vfs"]
    # Both tenants hold a VF on physnet1 (their instances on their networks).
    assert capacity_figures(page(world.alice_user, "/")) == [("physnet1", 1, vf_limit)]
    assert capacity_figures(page(world.bob_user, "/")) == [("physnet1", 1, vf_limit)]
    assert capacity_figures(page(world.admin_user, "/")) == [
        ("physnet1", 2, 8),
        ("physnet2", 0, 4),
    ]  # the cluster's
    for path in ("/", "/topology/", "/topology/?fragment=svg"):
        body = page(world.alice_user, path)
        assert not HARDWARE.search(body), (path, HARDWARE.search(body))
    topology = page(world.alice_user, "/topology/")
    a_vf = world.inst_a.attachments.get(network=world.net_a).vf
    assert f'data-vf-id="{a_vf.pk}"' in topology and "VLAN 100" in topology
    b_vf = world.inst_b.attachments.get(network=world.net_b).vf
    assert f'data-vf-id="{b_vf.pk}"' not in topology and "VLAN 101" not in topology
    assert HARDWARE.search(page(world.admin_user, "/topology/"))  # admins: everything


# --- 5./6. a shared network a tenant owns: leases, representation, websocket ---------------


def owned_shared_network(world) -> dict:
    """Tenant A owns the shared network `pool`; an instance of A and one of B are on it,
    and each has a lease there (reported as the network's DHCP server would)."""
    pool = create_network(
        tenant=world.tenant_a,
        name="pool",
        physnet="physnet1",
        vlan=210,
        cidr="10.60.0.0/24",
        shared=True,
        **SRIOV,
    )
    made = {"pool": pool}
    for key, tenant in (("a", world.tenant_a), ("b", world.tenant_b)):
        instance = create_instance(
            tenant=tenant, name=f"on-pool-{key}", kind="container", networks=[NetworkRequest(pool)]
        )
        made[key] = instance.attachments.get(network=pool)
    return made


def report_leases(made) -> dict:
    for key in ("a", "b"):
        attachment = made[key]
        apply_lease_event(
            {
                "network_id": str(made["pool"].pk),
                "mac": attachment.mac,
                "ip": str(attachment.ip),
                "action": "add",
                "hostname": "on-pool",
                "expires": 0,
            }
        )
    return {key: Lease.objects.get(network=made["pool"], mac=made[key].mac) for key in ("a", "b")}


def lease_ids(client, **params) -> set[str]:
    answer = client.get(url("leases"), params)
    assert answer.status_code == 200
    return {row["id"] for row in answer.json()["results"]}


def test_the_owner_of_a_shared_network_sees_only_its_own_tenants_leases(world):
    made = owned_shared_network(world)
    leases = report_leases(made)
    a, b, pool = str(leases["a"].pk), str(leases["b"].pk), made["pool"]
    assert a in lease_ids(world.alice) and b not in lease_ids(world.alice)
    assert lease_ids(world.alice, network=str(pool.pk)) == {a}
    assert lease_ids(world.alice, mac=made["b"].mac) == set()
    their, missing = world.alice.get(url("leases", b)), world.alice.get(url("leases", random_id()))
    assert their.status_code == missing.status_code == 404 and their.json() == missing.json()
    assert lease_ids(world.bob, network=str(pool.pk)) == {b}
    assert lease_ids(world.admin, network=str(pool.pk)) == {a, b}
    # The audit log and its live messages: B's lease is B's event, not the owner's.
    assert Event.objects.get(object_id=leases["b"].pk).tenant_id == world.tenant_b.pk
    events = world.alice.get(url("events"), {"kind": EventKind.LEASE_UPDATED}).json()["results"]
    assert {e["object_id"] for e in events} == {a}
    # The dashboard's network page: the owner sees its own lease only; B sees no owner.
    owner_page = page(world.alice_user, f"/networks/{pool.pk}/")
    assert made["a"].mac in owner_page and made["b"].mac not in owner_page
    guest_page = page(world.bob_user, f"/networks/{pool.pk}/")
    assert made["b"].mac in guest_page and made["a"].mac not in guest_page
    assert "tenant-a" not in guest_page and "Delete network" not in guest_page
    # The representation: a shared network another tenant owns shows no owner to members.
    assert world.bob.get(url("networks", pool)).json()["tenant"] is None
    assert world.alice.get(url("networks", pool)).json()["tenant"] == str(world.tenant_a.pk)
    assert world.admin.get(url("networks", pool)).json()["tenant"] == str(world.tenant_a.pk)


@pytest.mark.django_db(transaction=True)
def test_the_owner_of_a_shared_network_receives_no_other_tenants_lease_events():
    world = seed_world()
    made = owned_shared_network(world)
    tokens = {name: token_for(getattr(world, f"{name}_user")) for name in ("alice", "bob")}
    admin_cookie = session_cookie(world.admin_user)

    async def scenario():
        clients = {name: communicator(f"token={token}") for name, token in tokens.items()}
        clients["admin"] = communicator(headers=(ORIGIN, admin_cookie))
        for name, comm in clients.items():
            connected, code = await comm.connect()
            assert connected, (name, code)
        leases = await database_sync_to_async(report_leases)(made)
        await send_barrier(world.tenant_a.pk, world.tenant_b.pk)
        received = {name: await drain(comm) for name, comm in clients.items()}
        for comm in clients.values():
            await comm.disconnect()
        await close_thread_connections()
        return leases, received

    leases, received = asyncio.run(scenario())
    a, b = str(leases["a"].pk), str(leases["b"].pk)
    assert ids_by_type(received["alice"]).get("lease.updated") == {a}
    assert ids_by_type(received["bob"]).get("lease.updated") == {b}
    assert ids_by_type(received["admin"]).get("lease.updated") == {a, b}
    assert b not in str(received["alice"]) and made["b"].mac not in str(received["alice"])


# --- 7. bounds -----------------------------------------------------------------------------


def test_an_instance_takes_at_most_max_networks(world):
    before = (Instance.objects.count(), Operation.objects.count(), Attachment.objects.count())
    item = {"network": str(world.net_a.pk)}
    for count in (MAX_NETWORKS + 1, 10_000):
        body = {"name": "many", "kind": "container", "networks": [item] * count}
        answer = world.alice.post(url("instances"), body, format="json")
        assert answer.status_code == 400
        assert answer.json() == {
            "networks": [f"at most {MAX_NETWORKS} networks per instance, got {count}"]
        }
    # At the bound the list is validated item by item (here: the same network twice).
    body = {"name": "many", "kind": "container", "networks": [item] * MAX_NETWORKS}
    answer = world.alice.post(url("instances"), body, format="json")
    assert answer.status_code == 400 and "listed twice" in answer.content.decode()
    after = (Instance.objects.count(), Operation.objects.count(), Attachment.objects.count())
    assert after == before
