"""The server side of the double-submit guard (ciaoweb.dashboard.submissions): every
write form carries a one-time token, and the same form posted twice acts once."""

import re

import pytest
from django.core.cache import cache
from django.urls import reverse

from ciaoweb.dashboard.submissions import ALREADY_SENT, IN_FLIGHT
from ciaoweb.instances.models import Instance
from ciaoweb.inventory.models import Host
from ciaoweb.operations.choices import OperationKind
from ciaoweb.operations.models import Operation
from tests.worlds import provisioned

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def token_on(client, url: str) -> str:
    found = TOKEN.findall(client.get(url).content.decode())
    assert found, f"no form token on {url}"
    return found[0]


def launch_form(pages, name: str, token: str) -> dict:
    return {
        "name": name,
        "kind": "container",
        "networks": [str(pages.net_a.pk)],
        "form_token": token,
    }


@pytest.mark.parametrize(
    ("page", "forms"),
    # instance: migrate, attach, delete, and detach on its eth1
    [("/instances/", 1), ("/networks/", 1), ("instance", 4), ("network", 1), ("/hosts/", 2)],
)
def test_every_write_form_carries_a_fresh_token(pages, page, forms):
    url = {
        "instance": reverse("dashboard:instance-detail", args=[pages.inst_a.pk]),
        "network": reverse("dashboard:network-detail", args=[pages.net_a.pk]),
    }.get(page, page)
    first = TOKEN.findall(pages.admin_page.get(url).content.decode())
    assert len(first) == forms
    assert not set(first) & set(TOKEN.findall(pages.admin_page.get(url).content.decode()))


def test_the_same_launch_form_posted_twice_creates_one_instance(pages):
    form = launch_form(pages, "twice", token_on(pages.alice_page, "/instances/"))
    first = pages.alice_page.post("/instances/", form)
    created = Instance.objects.get(name="twice")
    assert first.status_code == 302
    assert first.url == reverse("dashboard:instance-detail", args=[created.pk])
    second = pages.alice_page.post("/instances/", form, follow=True)
    assert Instance.objects.filter(name="twice").count() == 1
    assert second.redirect_chain == [(first.url, 302)]  # where the first one went
    assert ALREADY_SENT in second.content.decode()


def test_a_repeat_while_the_first_is_still_running_goes_to_the_list(pages):
    token = token_on(pages.alice_page, "/instances/")
    cache.add(f"ciao:dashboard:form:{pages.alice_user.pk}:{token}", IN_FLIGHT)
    response = pages.alice_page.post("/instances/", launch_form(pages, "racing", token))
    assert response.status_code == 302 and response.url == "/instances/"
    assert not Instance.objects.filter(name="racing").exists()


def test_a_form_sent_back_with_errors_may_be_sent_again(pages):
    token = token_on(pages.alice_page, "/instances/")
    refused = pages.alice_page.post("/instances/", launch_form(pages, "Bad_Name", token))
    assert refused.status_code == 400
    accepted = pages.alice_page.post("/instances/", launch_form(pages, "good", token))
    assert accepted.status_code == 302 and Instance.objects.filter(name="good").exists()


def test_a_token_is_the_users_own(pages):
    """Bob posting with alice's token is not "already submitted": tokens are per user."""
    token = token_on(pages.alice_page, "/instances/")
    assert (
        pages.alice_page.post("/instances/", launch_form(pages, "mine", token)).status_code == 302
    )
    form = {"name": "mine", "kind": "container", "form_token": token}
    assert pages.bob_page.post("/instances/", form).status_code == 302
    assert Instance.objects.filter(name="mine").count() == 2


@pytest.mark.parametrize("token", ["short", "x" * 65, "no spaces allowed here", "é" * 20])
def test_a_malformed_token_is_a_clear_400(pages, token):
    response = pages.alice_page.post("/instances/", launch_form(pages, "odd", token))
    assert response.status_code == 400
    assert b"token is malformed" in response.content
    assert not Instance.objects.filter(name="odd").exists()


def test_without_a_token_a_repeat_gets_the_apis_clear_refusal(pages):
    form = {"name": "plain", "kind": "container", "networks": [str(pages.net_a.pk)]}
    assert pages.alice_page.post("/instances/", form).status_code == 302
    again = pages.alice_page.post("/instances/", form)
    assert again.status_code == 400
    assert "an instance named plain already exists in tenant-a" in again.content.decode()
    assert Instance.objects.filter(name="plain").count() == 1


def test_migrate_posted_twice_migrates_once(pages):
    instance = provisioned(pages.inst_a)
    detail = reverse("dashboard:instance-detail", args=[instance.pk])
    url = reverse("dashboard:instance-migrate", args=[instance.pk])
    form = {"form_token": token_on(pages.alice_page, detail)}
    assert pages.alice_page.post(url, form).url == detail
    second = pages.alice_page.post(url, form, follow=True)
    assert ALREADY_SENT in second.content.decode()
    assert "Could not migrate" not in second.content.decode()
    assert Operation.objects.filter(instance=instance, kind=OperationKind.MIGRATE).count() == 1


def test_delete_and_evacuate_posted_twice_act_once(pages):
    detail = reverse("dashboard:instance-detail", args=[pages.inst_a.pk])
    tokens = TOKEN.findall(pages.alice_page.get(detail).content.decode())
    url = reverse("dashboard:instance-delete", args=[pages.inst_a.pk])
    form = {"form_token": tokens[1]}  # the second form of the page: Delete
    assert pages.alice_page.post(url, form).url == "/instances/"
    again = pages.alice_page.post(url, form, follow=True)
    assert again.redirect_chain == [("/instances/", 302)] and ALREADY_SENT in again.content.decode()

    host = Host.objects.get(name="node1")
    url = reverse("dashboard:host-evacuate", args=[host.pk])
    form = {"form_token": token_on(pages.admin_page, "/hosts/")}
    assert pages.admin_page.post(url, form).status_code == 302
    again = pages.admin_page.post(url, form, follow=True)
    assert ALREADY_SENT in again.content.decode() and "Could not" not in again.content.decode()
    assert Operation.objects.filter(host=host, kind=OperationKind.EVACUATE).count() == 1
