"""Hostile input is a 400 (or 413/415) with a message for the offending field, never a 500,
and it is refused before anything reaches a node task, a command line or a config file:
a rejected request writes no row and schedules no after-commit dispatch."""

import json

from django.test import override_settings
from rest_framework.test import APIClient

from ciaoweb.instances.models import Instance
from ciaoweb.networks.models import Network
from ciaoweb.tenancy.models import Tenant
from tests.api.helpers import url
from tests.security.hostile import (
    HOSTILE_DOMAINS,
    HOSTILE_IPS,
    HOSTILE_MACS,
    HOSTILE_NAMES,
    HOSTILE_USERNAMES,
)


def refused(answer, field: str | None = None):
    """A client error (not 5xx) that names `field` when given; returns the error body."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.content[:300])
    body = answer.json()
    if field is not None:
        assert answer.status_code == 400, answer.content[:300]
        assert field in body and body[field], body
    return body


def network_payload(**overrides) -> dict:
    return {
        "name": "net1",
        "kind": "sriov",
        "physnet": "physnet2",
        "cidr": "10.50.0.0/24",
        "ipam": "controller",
        "dns_domain": "acme.example",
        **overrides,
    }


# -- names, hostnames, domains, usernames --------------------------------------------------
# One test per field, looping over the values (a world per value would cost seconds);
# a failure lists every value that got through.


def not_refused(send, field: str, values) -> list:
    """The values for which `send(value)` was not a 400 naming `field`."""
    through = []
    for value in values:
        answer = send(value)
        body = answer.json() if answer.get("Content-Type") == "application/json" else {}
        if answer.status_code != 400 or not body.get(field):
            through.append((value[:40] if isinstance(value, str) else value, answer.status_code))
    return through


def sender(client, method: str, path: str, field: str, base: dict | None = None):
    """`send(value)`: the request with `field` set to `value`."""

    def send(value):
        return getattr(client, method)(path, {**(base or {}), field: value}, format="json")

    return send


def test_hostile_tenant_names(world):
    before = Tenant.objects.count()
    send = sender(world.admin, "post", url("tenants"), "name")
    assert not_refused(send, "name", HOSTILE_NAMES) == []
    assert Tenant.objects.count() == before
    # renaming is checked the same way
    send = sender(world.admin, "patch", url("tenants", world.tenant_a), "name")
    assert not_refused(send, "name", HOSTILE_NAMES) == []


def refused_on_network_create_and_update(world, capture, field: str, values) -> None:
    """Every value of `field` is a 400 on create and on update, and nothing was created
    or sent on for it."""
    before = Network.objects.count()
    with capture() as callbacks:
        send = sender(world.alice, "post", url("networks"), field, network_payload())
        assert not_refused(send, field, values) == []
        send = sender(world.alice, "patch", url("networks", world.net_a), field)
        assert not_refused(send, field, values) == []
    assert Network.objects.count() == before and callbacks == []


def test_hostile_network_names(world, django_capture_on_commit_callbacks):
    refused_on_network_create_and_update(
        world, django_capture_on_commit_callbacks, "name", HOSTILE_NAMES
    )


def test_hostile_dns_domains(world, django_capture_on_commit_callbacks):
    refused_on_network_create_and_update(
        world, django_capture_on_commit_callbacks, "dns_domain", HOSTILE_DOMAINS
    )
    world.net_a.refresh_from_db()
    assert world.net_a.dns_domain == ""


def test_hostile_instance_names(world, django_capture_on_commit_callbacks):
    before = Instance.objects.count()

    def send(name):
        body = {"name": name, "kind": "container", "networks": [{"network": str(world.net_a.pk)}]}
        return world.alice.post(url("instances"), body, format="json")

    with django_capture_on_commit_callbacks() as callbacks:
        assert not_refused(send, "name", HOSTILE_NAMES) == []
    assert Instance.objects.count() == before and callbacks == []


def test_hostile_member_usernames(world):
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.count()

    def send(username):
        body = {"username": username, "password": "long-enough-pw", "role": "member"}
        return world.admin.post(url("tenants", world.tenant_a, "members"), body, format="json")

    assert not_refused(send, "username", HOSTILE_USERNAMES) == []
    assert get_user_model().objects.count() == users


def test_valid_values_pass_the_same_checks(world, django_capture_on_commit_callbacks):
    """The controls: the checks above refuse hostile values, not everything."""
    answer = world.admin.post(url("tenants"), {"name": "acme-2"}, format="json")
    assert answer.status_code == 201, answer.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = world.alice.post(url("networks"), network_payload(), format="json")
    assert answer.status_code == 201, answer.content
    body = {
        "name": "web-2",
        "kind": "container",
        "networks": [
            {"network": str(world.net_a.pk), "mac": "02:aa:bb:cc:dd:ee", "ip": "192.168.10.77"}
        ],
    }
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        answer = world.alice.post(url("instances"), body, format="json")
    assert answer.status_code == 201, answer.content
    assert callbacks, "a valid instance is dispatched after commit"
    body = {"username": "dave.o+ops@x", "password": "long-enough-pw", "role": "member"}
    answer = world.admin.post(url("tenants", world.tenant_a, "members"), body, format="json")
    assert answer.status_code == 201, answer.content


# -- MAC and IP fields ------------------------------------------------------------------------


def _instance_with(world, **network_fields):
    body = {
        "name": "probe",
        "kind": "container",
        "networks": [{"network": str(world.net_a.pk), **network_fields}],
    }
    return world.alice.post(url("instances"), body, format="json")


def _networks_field_errors(answer, field: str) -> bool:
    if answer.status_code != 400:
        return False
    errors = answer.json().get("networks") or []
    return any(isinstance(e, dict) and e.get(field) for e in errors)


def test_hostile_macs(world):
    values = [*HOSTILE_MACS, 12345, ["02:00:00:00:00:01"], {"a": 1}, True]
    through = [v for v in values if not _networks_field_errors(_instance_with(world, mac=v), "mac")]
    assert through == []
    assert not Instance.objects.filter(name="probe").exists()


def test_hostile_ips(world):
    values = [*HOSTILE_IPS, 7, ["192.168.10.5"], {"a": 1}]
    through = [v for v in values if not _networks_field_errors(_instance_with(world, ip=v), "ip")]
    assert through == []
    assert not Instance.objects.filter(name="probe").exists()


def test_ip_of_the_dhcp_server_and_a_taken_ip_are_refused(world):
    taken = world.inst_a.attachments.exclude(ip=None).first().ip
    for ip in (taken, "192.168.10.254"):
        assert _networks_field_errors(_instance_with(world, ip=ip), "ip"), ip


WRONG_NETWORK_VALUES = [
    ("cidr", "10.0.0.0/33"),
    ("cidr", "10.0.0.1/24"),
    ("cidr", "10.0.0.0/24;reboot"),
    ("cidr", "10.0.0.0/4"),
    ("cidr", "x" * 10 * 1024),
    ("cidr", None),
    ("gateway", "10.50.0.0"),
    ("gateway", "10.50.1.1"),
    ("gateway", "10.50.0.1;reboot"),
    ("vlan", "abc"),
    ("vlan", 0),
    ("vlan", 4095),
    ("vlan", -1),
    ("vlan", 10**12),
    ("vlan", [100]),
    ("vlan", 100.5),
    ("mtu", "big"),
    ("mtu", 10**9),
    ("kind", "bogus"),
    ("ipam", "dhcp;reboot"),
    ("physnet", "x" * 65),
    ("physnet", "phys\x00net"),
    ("name", None),
    ("name", 42.5),
    ("name", ["net1"]),
    ("name", {"a": "b"}),
    ("shared", "maybe"),
]


def test_wrong_values_and_types_on_networks(world):
    through = []
    for field, value in WRONG_NETWORK_VALUES:
        client = world.admin if field in ("shared", "vlan") else world.alice  # admin-only
        answer = client.post(url("networks"), network_payload(**{field: value}), format="json")
        if answer.status_code != 400 or not answer.json().get(field):
            through.append((field, value, answer.status_code))
    assert through == []


WRONG_INSTANCE_SHAPES = [
    ({"name": "x1", "kind": "container", "networks": {"network": "x"}}, "networks"),
    ({"name": "x1", "kind": "container", "networks": [42]}, "networks"),
    ({"name": "x1", "kind": "container", "networks": None}, "networks"),
    ({"name": "x1", "kind": "container", "networks": [{"network": None}]}, "networks"),
    ({"name": "x1", "kind": "container", "networks": [{"network": "../../etc"}]}, "networks"),
    ({"name": "x1", "kind": "container", "networks": [{}]}, "networks"),
    ({"name": "x1", "kind": 7}, "kind"),
    ({"name": "x1", "kind": None}, "kind"),
    ({"name": "x1"}, "kind"),
    ({"kind": "vm"}, "name"),
]


def test_wrong_shapes_on_instances(world):
    through = []
    for body, field in WRONG_INSTANCE_SHAPES:
        answer = world.alice.post(url("instances"), body, format="json")
        if answer.status_code != 400 or not answer.json().get(field):
            through.append((body, answer.status_code))
    assert through == []


# -- bodies: JSON, types, sizes, content types ------------------------------------------------

CREATE_ENDPOINTS = [
    ("admin", "tenants"),
    ("alice", "networks"),
    ("alice", "instances"),
    ("admin", "hosts"),
]
INVALID_JSON = [
    '{"name": ',
    "{'name': 'x'}",
    '{"name": "x",}',
    "NaN",
    '{"name": NaN}',
    "\x00",
    "\xff\xfe",
    "[" * 100_000 + "]" * 100_000,  # deeper than Python's recursion limit
    '{"a":' * 50_000 + "1" + "}" * 50_000,
]


def _post_raw(client, path, body: bytes | str, content_type="application/json"):
    return client.generic("POST", path, body, content_type=content_type)


def test_invalid_json_is_a_400(world):
    through = []
    for who, collection in CREATE_ENDPOINTS:
        for raw in INVALID_JSON:
            answer = _post_raw(getattr(world, who), url(collection), raw)
            if answer.status_code != 400 or "detail" not in answer.json():
                through.append((collection, raw[:20], answer.status_code))
    assert through == []


def test_json_that_is_not_an_object_is_a_400(world):
    through = []
    for who, collection in CREATE_ENDPOINTS:
        for body in ([{"name": "x"}], "x", 42, None, True):
            answer = _post_raw(getattr(world, who), url(collection), json.dumps(body))
            if answer.status_code != 400:
                through.append((collection, body, answer.status_code))
    assert through == []


def test_actions_refuse_bodies_of_the_wrong_shape(world):
    actions = {
        "members": url("tenants", world.tenant_a, "members"),
        "migrate": url("instances", world.inst_a, "migrate"),
        "token": url("auth/token"),
    }
    through = []
    for name, path in actions.items():
        for body in (
            [{"host": "node2"}],
            "node2",
            42,
            None,
            {"host": {"a": 1}},
            {"host": ["node2"]},
            {"username": ["x"], "password": 1},
        ):
            if name == "migrate" and isinstance(body, dict) and "host" not in body:
                continue  # no host: unknown fields are ignored, the scheduler picks one
            answer = _post_raw(world.admin, path, json.dumps(body))
            if answer.status_code != 400:
                through.append((name, body, answer.status_code))
    assert through == []


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=64 * 1024)
def test_a_body_over_the_upload_limit_is_refused(world):
    filler = "a" * (65 * 1024)
    bodies = {
        "application/json": json.dumps({"name": filler}),
        "application/x-www-form-urlencoded": f"name={filler}",
        "multipart/form-data; boundary=xyz": (
            f'--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\n{filler}\r\n--xyz--\r\n'
        ),
    }
    before = Tenant.objects.count()
    for content_type, raw in bodies.items():
        answer = _post_raw(world.admin, url("tenants"), raw, content_type)
        expected = 413 if content_type == "application/json" else 415  # the API is JSON only
        assert answer.status_code == expected, (content_type, answer.status_code)
    assert Tenant.objects.count() == before


def test_json_over_the_upload_limit_is_a_413(world, settings):
    raw = json.dumps({"name": "a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    answer = _post_raw(world.admin, url("tenants"), raw)
    assert answer.status_code == 413, answer.content[:200]
    assert "larger than" in answer.json()["detail"]


def test_unsupported_content_types_are_a_415(world):
    for content_type in (
        "text/plain",
        "application/xml",
        "application/yaml",
        "application/octet-stream",
        "text/html",
    ):
        answer = _post_raw(world.admin, url("tenants"), '{"name": "ok-name"}', content_type)
        assert answer.status_code == 415, (content_type, answer.status_code)
    assert not Tenant.objects.filter(name="ok-name").exists()


def test_form_and_multipart_posts_are_a_415_and_create_nothing(world):
    """The API takes JSON only (its schema offers nothing else); the sign-in alone also
    takes a form, under the same size limits (tests/security/test_auth_hardening.py)."""
    answer = world.admin.post(url("tenants"), {"name": "form-ok"})  # multipart by default
    assert answer.status_code == 415, answer.content
    answer = _post_raw(
        world.admin, url("tenants"), "name=form-ok", "application/x-www-form-urlencoded"
    )
    assert answer.status_code == 415, answer.content
    assert not Tenant.objects.filter(name="form-ok").exists()


def test_unknown_and_read_only_fields_are_ignored_everywhere(world):
    """Consistently ignored (DRF's behaviour), never stored or echoed back."""
    extra = {
        "evil": "$(reboot)",
        "id": "00000000-0000-4000-8000-000000000000",
        "created": "1999-01-01T00:00:00Z",
    }
    answer = world.admin.post(url("tenants"), {"name": "extra", **extra}, format="json")
    assert answer.status_code == 201 and "evil" not in answer.json()
    assert answer.json()["id"] != extra["id"]
    answer = world.alice.post(
        url("networks"), network_payload(is_primary=True, **extra), format="json"
    )
    assert answer.status_code == 201 and answer.json()["is_primary"] is False
    assert "evil" not in answer.json() and answer.json()["id"] != extra["id"]
    body = {
        "name": "extra",
        "kind": "vm",
        "state": "running",
        "netns": "/etc",
        "error": "x",
        "networks": [{"network": str(world.net_a.pk), "vf": "x", "evil": 1}],
        **extra,
    }
    answer = world.alice.post(url("instances"), body, format="json")
    assert answer.status_code == 201, answer.content
    created = answer.json()
    assert created["state"] == "pending" and created["netns"] == "ciao-tenant-a-extra"
    assert created["error"] == "" and "evil" not in created


# -- query strings, paths and headers ------------------------------------------------------------

HOSTILE_FILTERS = [
    "events/?since=garbage",
    "events/?since=%00",
    "events/?object_id=not-a-uuid",
    "attachments/?network=x%00",
    "attachments/?instance=../../etc",
    "networks/?physnet=x%00",
    "leases/?mac=%00",
    "instances/?host=%27%3B--",
    "virtual-functions/?pf=1%20OR%201=1",
]


def test_hostile_filters_are_a_400(world):
    through = []
    for path in HOSTILE_FILTERS:
        answer = world.admin.get(f"/api/v1/{path}")
        if answer.status_code != 400:
            through.append((path, answer.status_code))
    assert through == []


def test_hostile_page_numbers_and_ids_are_a_404(world):
    through = []
    for page in ("abc", "-1", "0", "99999999999999999999", "%00"):
        if (status := world.admin.get(f"/api/v1/networks/?page={page}").status_code) != 404:
            through.append((page, status))
    for collection in (
        "tenants",
        "networks",
        "instances",
        "hosts",
        "leases",
        "attachments",
        "events",
        "virtual-functions",
        "physical-functions",
    ):
        for segment in (
            "..%2f..%2fetc",
            "%00",
            "1%20OR%201%3D1",
            "x" * 2000,
            "%E2%80%8B",
            "00000000-0000-4000-8000-000000000000",
        ):
            answer = world.admin.get(f"/api/v1/{collection}/{segment}/")
            if answer.status_code != 404:
                through.append((collection, segment[:20], answer.status_code))
    assert through == []


def test_garbage_tokens_are_a_401(db):
    client = APIClient()
    through = []
    for header in [
        "Token",
        "Token a b",
        "Token \x00",
        "Token " + "\x00" * 40,
        "Token " + "x" * 5000,
        "Bearer abc",
        "Token ' OR '1'='1",
        "Token " + "0" * 40,
    ]:
        answer = client.get(url("networks"), HTTP_AUTHORIZATION=header)
        if answer.status_code != 401:
            through.append((header[:20], answer.status_code))
    assert through == []
