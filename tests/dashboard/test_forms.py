"""Mutations go through the API's viewsets: same messages, same rules, same services."""

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from ciaoweb.events.models import Event
from ciaoweb.instances.models import Instance
from ciaoweb.inventory.models import Host
from ciaoweb.networks.models import Network
from tests.worlds import provisioned

pytestmark = pytest.mark.django_db

NETWORK_FORM = {
    "name": "storage",
    "physnet": "physnet1",
    "vlan": "",
    "cidr": "10.50.0.0/24",
    "gateway": "",
    "ipam": "controller",
    "mtu": "",
    "dns_domain": "",
}


def api_errors(user, path: str, payload: dict) -> dict:
    """What the REST API answers to the same request (the messages the form must show)."""
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(path, payload, format="json")
    assert response.status_code == 400, response.content
    return response.json()


def messages_of(errors) -> list[str]:
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in messages_of(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in messages_of(value)]
    return [str(errors)]


def assert_shows(response, messages: list[str]) -> None:
    body = response.content.decode()
    for message in messages:
        escaped = message.replace("'", "&#x27;").replace('"', "&quot;")
        assert message in body or escaped in body, f"{message!r} not on the page"


def test_member_creates_a_network_in_its_tenant(pages):
    response = pages.alice_page.post("/networks/", NETWORK_FORM)
    network = Network.objects.get(name="storage")
    assert response.status_code == 302
    assert response.url == reverse("dashboard:network-detail", args=[network.pk])
    assert network.tenant == pages.tenant_a and network.vlan is not None  # VLAN allocated


@pytest.mark.parametrize(
    "changes",
    [  # a VLAN is an admin's: tests/dashboard/test_tenant_limits_pages.py
        {"name": "Bad_Name"},
        {"cidr": "10.50.0.0/33"},
        {"cidr": "192.168.10.0/25", "name": "overlap"},  # overlaps tenant a's `data`
        {"gateway": "10.99.0.1"},
        {"mtu": "100", "dns_domain": "not a domain"},
        {"name": "data"},
    ],
)
def test_network_form_shows_the_apis_field_messages(pages, changes):
    payload = {**NETWORK_FORM, **changes}
    expected = api_errors(
        pages.alice_user,
        "/api/v1/networks/",
        {
            "kind": "sriov",
            **{k: v for k, v in payload.items() if v != ""},
        },
    )
    response = pages.alice_page.post("/networks/", payload)
    assert response.status_code == 400
    assert_shows(response, messages_of(expected))
    assert not Network.objects.filter(
        name=payload["name"], tenant=pages.tenant_a, cidr=payload["cidr"]
    ).exists()


def test_admin_creates_a_shared_network(pages):
    response = pages.admin_page.post(
        "/networks/", {**NETWORK_FORM, "name": "common", "tenant": "", "shared": "on"}
    )
    assert response.status_code == 302
    network = Network.objects.get(name="common")
    assert network.tenant is None and network.shared


def test_deleting_a_network_in_use_shows_the_conflict(pages):
    url = reverse("dashboard:network-delete", args=[pages.net_a.pk])
    response = pages.alice_page.post(url, follow=True)
    assert Network.objects.filter(pk=pages.net_a.pk).exists()
    assert "in use by 1 attachments" in response.content.decode()


def test_deleting_an_unused_network(pages):
    pages.alice_page.post("/networks/", NETWORK_FORM)
    network = Network.objects.get(name="storage")
    response = pages.alice_page.post(reverse("dashboard:network-delete", args=[network.pk]))
    assert response.status_code == 302 and not Network.objects.filter(pk=network.pk).exists()


def test_member_cannot_delete_another_tenants_network(pages):
    response = pages.alice_page.post(reverse("dashboard:network-delete", args=[pages.net_b.pk]))
    assert response.status_code == 404
    assert Network.objects.filter(pk=pages.net_b.pk).exists()


def test_member_launches_an_instance_with_a_secondary_network(pages):
    response = pages.alice_page.post(
        "/instances/", {"name": "db", "kind": "vm", "networks": [str(pages.net_a.pk)]}
    )
    instance = Instance.objects.get(name="db")
    assert response.status_code == 302
    assert instance.tenant == pages.tenant_a
    assert sorted(instance.attachments.values_list("ifname", flat=True)) == ["eth0", "eth1"]


def test_launch_form_offers_the_tenants_and_shared_networks_only(pages):
    body = pages.alice_page.get("/instances/").content.decode()
    choices = re.findall(r'name="networks" value="([^"]+)"', body)
    assert sorted(choices) == sorted([str(pages.net_a.pk), str(pages.shared.pk)])


@pytest.mark.parametrize("case", ["bad-name", "foreign-network", "duplicate-name"])
def test_instance_form_shows_the_apis_messages(pages, case):
    form = {"name": "db", "kind": "container", "networks": [str(pages.net_a.pk)]}
    if case == "bad-name":
        form["name"] = "-db-"
    elif case == "foreign-network":
        form["networks"] = [str(pages.net_b.pk)]
    else:
        form["name"] = "web-a"
    expected = api_errors(
        pages.alice_user,
        "/api/v1/instances/",
        {
            "name": form["name"],
            "kind": form["kind"],
            "networks": [{"network": n} for n in form["networks"]],
        },
    )
    response = pages.alice_page.post("/instances/", form)
    assert response.status_code == 400
    assert_shows(response, messages_of(expected))
    assert Instance.objects.filter(tenant=pages.tenant_a).count() == 1


def test_admin_launch_without_tenant_shows_the_apis_message(pages):
    response = pages.admin_page.post("/instances/", {"name": "x", "kind": "container"})
    assert response.status_code == 400
    assert "say which tenant the instance belongs to" in response.content.decode()


def test_admin_launches_on_a_chosen_host(pages):
    response = pages.admin_page.post(
        "/instances/",
        {
            "name": "pinned",
            "kind": "container",
            "tenant": str(pages.tenant_b.pk),
            "host": "node2",
            "networks": [str(pages.net_b.pk)],
        },
    )
    assert response.status_code == 302
    instance = Instance.objects.get(name="pinned")
    assert instance.tenant == pages.tenant_b and instance.host.name == "node2"


def running(instance) -> Instance:
    return provisioned(instance)


def migration_target(instance) -> str:
    """Where the API sent it, from the audit event `migrate_instance` records."""
    return Event.objects.get(kind="instance.migrating", object_id=instance.pk).data["to"]


def test_admin_migrates_to_a_chosen_host(pages):
    instance = running(pages.inst_a)
    target = Host.objects.exclude(pk=instance.host_id).get()
    url = reverse("dashboard:instance-migrate", args=[instance.pk])
    response = pages.admin_page.post(url, {"host": target.name})
    assert response.status_code == 302
    assert Instance.objects.get(pk=instance.pk).state == "migrating"
    assert migration_target(instance) == target.name


def test_member_migration_lets_the_scheduler_choose(pages):
    instance = running(pages.inst_a)
    url = reverse("dashboard:instance-migrate", args=[instance.pk])
    response = pages.alice_page.post(url, {"host": "node1"})  # no host field for members
    assert response.status_code == 302
    assert Instance.objects.get(pk=instance.pk).state == "migrating"
    assert migration_target(instance) != instance.host.name


def test_migrating_a_pending_instance_shows_the_apis_refusal(pages):
    url = reverse("dashboard:instance-migrate", args=[pages.inst_a.pk])
    response = pages.alice_page.post(url, follow=True)
    assert "only running, stopped or error instances migrate" in response.content.decode()
    assert Instance.objects.get(pk=pages.inst_a.pk).state == "pending"


def test_deleting_an_instance_marks_it_deleting(pages):
    url = reverse("dashboard:instance-delete", args=[pages.inst_a.pk])
    response = pages.alice_page.post(url)
    assert response.status_code == 302 and response.url == "/instances/"
    assert Instance.objects.get(pk=pages.inst_a.pk).state == "deleting"


def test_member_cannot_touch_another_tenants_instance(pages):
    for action in ("instance-migrate", "instance-delete"):
        response = pages.alice_page.post(reverse(f"dashboard:{action}", args=[pages.inst_b.pk]))
        assert response.status_code == 404
    assert Instance.objects.get(pk=pages.inst_b.pk).state == "pending"


def test_admin_evacuates_and_restores_a_host(pages):
    host = Host.objects.get(name="node1")
    pages.admin_page.post(reverse("dashboard:host-evacuate", args=[host.pk]))
    host.refresh_from_db()
    assert host.state == "maintenance"
    assert b"Restore node1" in pages.admin_page.get("/hosts/").content
    pages.admin_page.post(reverse("dashboard:host-restore", args=[host.pk]))
    host.refresh_from_db()
    assert host.state == "online"


def test_member_cannot_evacuate_a_host(pages):
    host = Host.objects.get(name="node1")
    response = pages.alice_page.post(reverse("dashboard:host-evacuate", args=[host.pk]))
    assert response.status_code == 403
    host.refresh_from_db()
    assert host.state == "online"


def test_admin_tenant_selector_narrows_the_lists(pages):
    response = pages.admin_page.post(
        "/tenant/", {"tenant": str(pages.tenant_b.pk), "next": "/networks/"}
    )
    assert response.status_code == 302 and response.url == "/networks/"
    body = pages.admin_page.get("/networks/").content.decode()
    assert str(pages.net_b.pk) in body and str(pages.shared.pk) in body
    assert str(pages.net_a.pk) not in body
    # Narrowing never hides a page: the admin still opens tenant a's network.
    url = reverse("dashboard:network-detail", args=[pages.net_a.pk])
    assert pages.admin_page.get(url).status_code == 200
    pages.admin_page.post("/tenant/", {"tenant": ""})
    assert str(pages.net_a.pk) in pages.admin_page.get("/networks/").content.decode()


def test_tenant_selector_refuses_members_and_foreign_redirects(pages):
    assert pages.alice_page.post("/tenant/", {"tenant": str(pages.tenant_b.pk)}).status_code == 403
    response = pages.admin_page.post("/tenant/", {"tenant": "", "next": "https://evil.example/"})
    assert response.url == "/"


def test_event_log_filters_by_kind_and_object_type(pages):
    body = pages.admin_page.get("/events/?kind=instance.created").content.decode()
    assert "instance.created" in body and "network.created</code>" not in body
    body = pages.admin_page.get("/events/?object_type=network").content.decode()
    assert "network.created" in body and "instance.created</code>" not in body


def test_event_log_is_tenant_scoped_with_an_admin_tenant_filter(pages):
    assert "web-b" not in pages.alice_page.get("/events/").content.decode()
    # A member's `tenant` parameter is ignored: still its own events only.
    url = f"/events/?tenant={pages.tenant_b.pk}"
    assert "web-b" not in pages.alice_page.get(url).content.decode()
    body = pages.admin_page.get(url).content.decode()
    assert "web-b" in body and "web-a" not in body
    assert Event.objects.filter(tenant=pages.tenant_a).exists()
