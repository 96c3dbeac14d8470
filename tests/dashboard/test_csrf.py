"""Every form is CSRF-protected: without the token the POST is refused and nothing changes."""

import re

import pytest
from django.urls import reverse

from ciaoweb.instances.models import Instance
from ciaoweb.inventory.models import Host
from ciaoweb.networks.models import Network
from tests.dashboard.conftest import logged_in

pytestmark = pytest.mark.django_db


def token_from(client, url: str) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


@pytest.fixture
def strict(pages):
    pages.alice_strict = logged_in(pages.alice_user, enforce_csrf=True)
    pages.admin_strict = logged_in(pages.admin_user, enforce_csrf=True)
    return pages


def form_posts(p):
    host = Host.objects.get(name="node1")
    return [
        (p.alice_strict, "/networks/", {"name": "x", "cidr": "10.9.0.0/24", "physnet": "physnet1"}),
        (p.alice_strict, reverse("dashboard:network-delete", args=[p.net_a.pk]), {}),
        (p.alice_strict, "/instances/", {"name": "x", "kind": "container"}),
        (p.alice_strict, reverse("dashboard:instance-migrate", args=[p.inst_a.pk]), {}),
        (p.alice_strict, reverse("dashboard:instance-delete", args=[p.inst_a.pk]), {}),
        (p.admin_strict, reverse("dashboard:host-evacuate", args=[host.pk]), {}),
        (p.admin_strict, reverse("dashboard:host-restore", args=[host.pk]), {}),
        (p.admin_strict, "/tenant/", {"tenant": ""}),
        (p.alice_strict, "/logout/", {}),
    ]


def test_posts_without_a_csrf_token_are_refused(strict):
    networks, instances = Network.objects.count(), Instance.objects.count()
    for client, url, data in form_posts(strict):
        assert client.post(url, data).status_code == 403, url
    assert Network.objects.count() == networks and Instance.objects.count() == instances
    assert Instance.objects.get(pk=strict.inst_a.pk).state == "pending"
    assert Host.objects.get(name="node1").state == "online"


def test_login_form_needs_the_token_too(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "alice", "password": "secret-alice"})
    assert response.status_code == 403


def test_the_same_posts_with_the_pages_token_go_through(strict):
    token = token_from(strict.alice_strict, "/networks/")
    data = {"name": "x", "cidr": "10.9.0.0/24", "physnet": "physnet1", "csrfmiddlewaretoken": token}
    assert strict.alice_strict.post("/networks/", data).status_code == 302
    token = token_from(strict.alice_strict, "/instances/")
    url = reverse("dashboard:instance-delete", args=[strict.inst_a.pk])
    assert strict.alice_strict.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert Instance.objects.get(pk=strict.inst_a.pk).state == "deleting"
