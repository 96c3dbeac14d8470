"""List conventions like NetBox's (ciaoweb/core/api/filtering.py, pagination.py): foreign
keys by id or name, repeated parameters, `__ic` and the other lookups, `q`, `ordering`
with an allow-list, leases by IP number (SQLite too), `limit`/`offset` with a maximum; and
another tenant's id or name answers exactly as one that does not exist.

The lease-ordering test is the one to run once on SQLite as well (DATABASE_URL unset)."""

import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from ciaoweb.core.api.pagination import MAX_LIMIT
from ciaoweb.instances.services import NetworkRequest, create_instance
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.models import Lease
from ciaoweb.networks.services import create_network
from tests.api.helpers import inventory, url
from tests.worlds import HOST_VFS, provisioned

# As text: 10.1.0.100 < 10.1.0.20 < 10.1.0.200 < 10.1.0.3 < 10.1.0.9.
LEASE_IPS = ["10.1.0.20", "10.1.0.3", "10.1.0.200", "10.1.0.9", "10.1.0.100"]
BY_NUMBER = ["10.1.0.3", "10.1.0.9", "10.1.0.20", "10.1.0.100", "10.1.0.200"]


def rows(answer) -> list[dict]:
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


def names(answer) -> list[str]:
    return [row["name"] for row in rows(answer)]


def get(client, collection: str, params=None):
    """`params` a dict, or a list of pairs for repeated parameters."""
    return client.get(url(collection), params or {})


@pytest.fixture
def boxes(world):
    """Tenant a: `web-1` (node1, on its SR-IOV network `data`), `web-2` (node2) and `db`
    (node1, running); tenant b: `web-1` (node2), and its own network `b-only`."""
    node1, node2 = world.hosts

    def make(tenant, name, host, networks=()):
        requests = [NetworkRequest(network=n) for n in networks]
        return create_instance(
            tenant=tenant, name=name, kind="container", networks=requests, host=host
        )

    made = {
        "web-1": make(world.tenant_a, "web-1", node1, [world.net_a]),
        "web-2": make(world.tenant_a, "web-2", node2),
        "db": provisioned(make(world.tenant_a, "db", node1)),
        "b-web-1": make(world.tenant_b, "web-1", node2, [world.net_b]),
    }
    made["b-only"] = create_network(
        tenant=world.tenant_b,
        name="b-only",
        kind="sriov",
        physnet="physnet2",
        vlan=120,
        cidr="10.99.0.0/24",
        ipam="controller",
    )
    return made


# --- foreign keys by id or name, several values -----------------------------------------


def test_a_foreign_key_filter_takes_an_id_or_a_name(world, boxes):
    node1, node2 = world.hosts
    for value in (node1.name, str(node1.pk)):
        assert sorted(names(get(world.alice, "instances", {"host": value}))) == ["db", "web-1"]
    answer = get(world.admin, "instances", [("host", "node1"), ("host", str(node2.pk))])
    assert len(rows(answer)) == 4
    assert names(get(world.admin, "instances", {"tenant": "tenant-b"})) == ["web-1"]
    assert sorted(names(get(world.admin, "instances", {"host__n": "node1"}))) == ["web-1", "web-2"]
    # A network by name among those the requester sees: alice's `data`, not b's.
    attachments = rows(get(world.alice, "attachments", {"network": "data"}))
    assert {a["instance"] for a in attachments} == {str(boxes["web-1"].pk)}
    attachments = rows(get(world.admin, "attachments", {"network": "data"}))
    assert {a["instance"] for a in attachments} == {
        str(boxes["web-1"].pk),
        str(boxes["b-web-1"].pk),
    }
    # An instance by name (alice's web-1, not b's); operations of it the same way.
    attachments = rows(get(world.alice, "attachments", {"instance": "web-1"}))
    assert {a["ifname"] for a in attachments} == {"eth0", "eth1"}
    assert {a["instance"] for a in attachments} == {str(boxes["web-1"].pk)}
    operations = rows(get(world.alice, "operations", {"instance": "web-1"}))
    assert {o["instance"] for o in operations} == {str(boxes["web-1"].pk)}


def test_filters_take_several_values(world, boxes):
    by_state = get(world.alice, "instances", [("state", "running"), ("state", "pending")])
    assert sorted(names(by_state)) == ["db", "web-1", "web-2"]
    assert names(get(world.alice, "instances", {"state": "running"})) == ["db"]
    assert sorted(names(get(world.alice, "instances", [("name", "db"), ("name", "web-2")]))) == [
        "db",
        "web-2",
    ]
    assert sorted(names(get(world.alice, "instances", {"state__n": "running"}))) == [
        "web-1",
        "web-2",
    ]
    # Empty values are no filter; an unknown one among known ones is the filter's 400.
    assert len(rows(get(world.alice, "instances", {"state": ""}))) == 3
    answer = get(world.alice, "instances", [("state", "running"), ("state", "asleep")])
    assert answer.status_code == 400 and "asleep" in answer.json()["state"][0]
    answer = get(world.admin, "instances", [("host", "node1"), ("host", "no-such-host")])
    assert answer.status_code == 400 and list(answer.json()) == ["host"]
    answer = get(world.alice, "instances", [("name", f"n{i}") for i in range(101)])
    assert answer.status_code == 400 and answer.json() == {"name": ["at most 100 values"]}


def test_another_tenants_id_or_name_answers_like_one_that_does_not_exist(world, boxes):
    node1 = world.hosts[0]
    # A host only tenant b uses: alice may not learn that it exists.
    b_host = register_inventory("node3", inventory("node3", HOST_VFS))
    create_instance(tenant=world.tenant_b, name="b-box", kind="container", networks=[], host=b_host)
    cases = [
        ("instances", "tenant", "tenant-b", "tenant-c"),
        ("instances", "tenant", str(world.tenant_b.pk), str(uuid.uuid4())),
        ("instances", "host", "node3", "node9"),
        ("instances", "host", str(b_host.pk), str(uuid.uuid4())),
        ("instances", "host__n", "node3", "node9"),
        ("networks", "tenant", "tenant-b", "tenant-c"),
        ("attachments", "network", "b-only", "no-such-net"),
        ("leases", "network", "b-only", "no-such-net"),
        ("leases", "network", str(boxes["b-only"].pk), str(uuid.uuid4())),
        ("attachments", "instance", str(boxes["b-web-1"].pk), str(uuid.uuid4())),
        ("operations", "tenant", "tenant-b", "tenant-c"),
        ("events", "tenant", "tenant-b", "tenant-c"),
    ]
    for collection, name, theirs, missing in cases:
        their = get(world.alice, collection, {name: theirs})
        unknown = get(world.alice, collection, {name: missing})
        assert their.status_code == unknown.status_code == 400, (collection, name)
        assert their.json() == unknown.json() == {name: [unknown.json()[name][0]]}
        assert theirs not in their.content.decode()
        # ... and as one of several values, beside one of alice's own.
        own = {"tenant": "tenant-a", "host": node1.name, "host__n": node1.name}.get(name)
        if own is not None:
            assert get(world.alice, collection, [(name, own), (name, theirs)]).json() == (
                get(world.alice, collection, [(name, own), (name, missing)]).json()
            )
    # The admin sees every tenant: the same filters are answers.
    for collection, name, theirs, _ in cases:
        assert get(world.admin, collection, {name: theirs}).status_code == 200, (collection, name)


# --- lookups and search -------------------------------------------------------------------


def test_text_lookups_like_netbox(world, boxes):
    alice = world.alice
    assert sorted(names(get(alice, "instances", {"name__ic": "WEB"}))) == ["web-1", "web-2"]
    assert sorted(names(get(alice, "instances", {"name__isw": "we"}))) == ["web-1", "web-2"]
    assert names(get(alice, "instances", {"name__iew": "-2"})) == ["web-2"]
    assert names(get(alice, "instances", {"name__ie": "DB"})) == ["db"]
    assert names(get(alice, "instances", {"name__nic": "web"})) == ["db"]
    assert sorted(names(get(alice, "instances", {"name__n": "db"}))) == ["web-1", "web-2"]
    assert sorted(names(get(alice, "instances", [("name__ic", "1"), ("name__ic", "db")]))) == [
        "db",
        "web-1",
    ]
    assert [n["name"] for n in rows(get(world.admin, "networks", {"name__isw": "b-"}))] == [
        "b-only"
    ]
    # Booleans are true or false; anything else is a 400, not silently no filter.
    assert {n["shared"] for n in rows(get(world.admin, "networks", {"shared": "true"}))} == {True}
    assert get(world.admin, "networks", {"shared": "maybe"}).status_code == 400


def test_q_searches_names_macs_and_ips(world, boxes):
    web_1 = boxes["web-1"].attachments.get(network=world.net_a)
    assert sorted(names(get(world.alice, "instances", {"q": "EB-"}))) == ["web-1", "web-2"]
    assert names(get(world.alice, "instances", {"q": web_1.mac.upper()})) == ["web-1"]
    assert names(get(world.alice, "instances", {"q": str(web_1.ip)})) == ["web-1"]
    found = rows(get(world.alice, "attachments", {"q": web_1.mac.upper()}))
    assert [a["id"] for a in found] == [str(web_1.pk)]
    # Another tenant's rows are never found, even by their own MAC.
    b_mac = boxes["b-web-1"].attachments.get(network=world.net_b).mac
    assert rows(get(world.alice, "attachments", {"q": b_mac})) == []
    assert [n["name"] for n in rows(get(world.admin, "networks", {"q": "10.99."}))] == ["b-only"]
    assert [h["name"] for h in rows(get(world.admin, "hosts", {"q": "DE2"}))] == ["node2"]
    answer = get(world.alice, "instances", {"q": "x" * 201})
    assert answer.status_code == 400 and "q" in answer.json()


# --- ordering -----------------------------------------------------------------------------


def test_ordering_by_allowed_fields_and_a_400_for_others(world, boxes):
    alice = world.alice
    assert names(get(alice, "instances", {"ordering": "name"})) == ["db", "web-1", "web-2"]
    assert names(get(alice, "instances", {"ordering": "-name"})) == ["web-2", "web-1", "db"]
    by_host = names(get(alice, "instances", {"ordering": "-host,name"}))
    assert by_host == ["web-2", "db", "web-1"]
    # Ties keep one order, the ids': pages never swap rows.
    pending = sorted(str(boxes[n].pk) for n in ("web-1", "web-2"))
    tied = rows(get(alice, "instances", {"ordering": "state"}))
    assert [r["id"] for r in tied] == pending + [str(boxes["db"].pk)]
    for bad in ("colour", "-colour", "name,error", "--name"):
        answer = get(alice, "instances", {"ordering": bad})
        assert answer.status_code == 400, bad
        message = answer.json()["ordering"][0]
        assert "is not a field to order by: use name, state, kind, host, tenant" in message
    hosts = rows(get(world.admin, "hosts", {"ordering": "-name"}))
    assert [h["name"] for h in hosts] == ["node2", "node1"]


def test_leases_and_attachments_are_ordered_by_ip_number(world):
    """Numbers, not text (10.1.0.10 after 10.1.0.9), in the API's default order and
    `ordering=ip`, and on the dashboard's network page. Run on SQLite too."""
    network = create_network(
        tenant=world.tenant_a,
        name="leased",
        kind="sriov",
        physnet="physnet2",
        vlan=130,
        cidr="10.1.0.0/24",
        ipam="controller",
    )
    for number, ip in enumerate(LEASE_IPS):
        Lease.objects.create(network=network, mac=f"02:00:00:00:01:{number:02x}", ip=ip)

    def ips(**params) -> list[str]:
        return [r["ip"] for r in rows(get(world.alice, "leases", {"network": "leased", **params}))]

    assert ips() == BY_NUMBER
    assert ips(ordering="ip") == BY_NUMBER
    assert ips(ordering="-ip") == BY_NUMBER[::-1]
    client = Client()
    client.force_login(world.alice_user)
    page = client.get(f"/networks/{network.pk}/").content.decode()
    shown = [ip for ip in re.findall(r"\b10\.1\.0\.\d+\b", page) if ip in BY_NUMBER]
    assert list(dict.fromkeys(shown)) == BY_NUMBER
    # Attachments' IPs the same way.
    for name, ip in (("ten", "192.168.10.10"), ("nine", "192.168.10.9")):
        create_instance(
            tenant=world.tenant_a,
            name=name,
            kind="container",
            networks=[NetworkRequest(network=world.net_a, ip=ip)],
        )
    found = rows(get(world.alice, "attachments", {"network": "data", "ordering": "ip"}))
    assert [a["ip"] for a in found] == ["192.168.10.9", "192.168.10.10"]


# --- paging ---------------------------------------------------------------------------------


def query_of(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


def test_limit_offset_and_pages(world, boxes):
    alice, every = world.alice, names(get(world.alice, "instances", {"ordering": "name"}))
    assert every == ["db", "web-1", "web-2"]
    answer = get(alice, "instances", {"ordering": "name", "limit": 2})
    body = answer.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3 and [r["name"] for r in body["results"]] == ["db", "web-1"]
    assert body["previous"] is None and query_of(body["next"])["page"] == ["2"]
    second = alice.get(body["next"]).json()
    assert [r["name"] for r in second["results"]] == ["web-2"] and second["next"] is None
    assert alice.get(second["previous"]).json()["results"] == body["results"]
    # offset: links in that style; past the end an empty page.
    body = get(alice, "instances", {"ordering": "name", "limit": 1, "offset": 1}).json()
    assert [r["name"] for r in body["results"]] == ["web-1"]
    assert query_of(body["next"])["offset"] == ["2"] and "offset" not in query_of(body["previous"])
    assert rows(get(alice, "instances", {"offset": 10})) == []
    # page_size is limit's other name; the maximum is a 400 that names it.
    assert len(rows(get(alice, "instances", {"page_size": 1}))) == 1
    assert len(rows(get(alice, "instances", {"limit": MAX_LIMIT}))) == 3
    for params in ({"limit": MAX_LIMIT + 1}, {"limit": 0}, {"limit": "x"}, {"page_size": -1}):
        answer = get(alice, "instances", params)
        assert answer.status_code == 400, params
        assert answer.json() == {next(iter(params)): ["must be a whole number from 1 to 1000"]}
    assert get(alice, "instances", {"offset": "-1"}).json() == {
        "offset": ["must be a whole number from 0"]
    }
    assert get(alice, "instances", {"page": 2, "offset": 1}).status_code == 400
    for page in ("0", "x", "3"):
        assert get(alice, "instances", {"page": page, "limit": 2}).status_code == 404, page
