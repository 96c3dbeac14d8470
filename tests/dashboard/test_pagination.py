"""Every list page paginates through one helper (ciaoweb.dashboard.pagination) and one
partial; the page links keep the other query parameters."""

import html
import re

import pytest
from django.test import RequestFactory
from django.urls import reverse

from ciaoweb.dashboard.pagination import MAX_PER_PAGE, PER_PAGE, paginate
from ciaoweb.networks.models import Lease, Network

pytestmark = pytest.mark.django_db


def links(body: str) -> dict[str, str]:
    """The pager's links, {label: href} (hrefs unescaped)."""
    nav = re.search(r'<nav class="pager".*?</nav>', body, re.S)
    assert nav, "no pager on the page"
    return {
        label: html.unescape(href)
        for href, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav.group(0))
    }


def test_the_helper_keeps_other_parameters_and_drops_page_and_fragment():
    request = RequestFactory().get("/x/", {"kind": "a", "page": "2", "fragment": "rows"})
    pager = paginate(request, list(range(120)), "rows")
    assert list(pager.page) == list(range(50, 100))
    assert pager.previous_url == "?kind=a&page=1" and pager.next_url == "?kind=a&page=3"
    assert pager.first_url == "?kind=a&page=1" and pager.last_url == "?kind=a&page=3"


@pytest.mark.parametrize(
    ("per_page", "size"),
    [("7", 7), ("abc", PER_PAGE), ("0", 1), ("-3", 1), (str(10**6), MAX_PER_PAGE), ("", PER_PAGE)],
)
def test_per_page_is_bounded_and_a_bad_one_falls_back(per_page, size):
    request = RequestFactory().get("/x/", {"per_page": per_page})
    assert paginate(request, list(range(1000)), "rows").page.paginator.per_page == size


@pytest.mark.parametrize("page", ["abc", "999", "-1"])
def test_a_bad_page_number_is_not_an_error(pages, page):
    response = pages.admin_page.get("/instances/", {"page": page, "per_page": "1"})
    assert response.status_code == 200


def test_instances_page_by_page_with_links_keeping_per_page(pages):
    body = pages.admin_page.get("/instances/", {"per_page": "1"}).content.decode()
    assert "web-a" in body and "web-b" not in body and "page 1 of 2" in body
    assert links(body) == {"Next": "?per_page=1&page=2", "Last": "?per_page=1&page=2"}
    body = pages.admin_page.get("/instances/", {"per_page": "1", "page": "2"}).content.decode()
    assert "web-b" in body and "web-a" not in body.split('<nav class="pager"')[0].split("<tbody")[1]
    assert links(body) == {"First": "?per_page=1&page=1", "Previous": "?per_page=1&page=1"}


def test_one_page_shows_no_pager(pages):
    assert '<nav class="pager"' not in pages.admin_page.get("/instances/").content.decode()


def test_networks_page_by_page(pages):
    total = Network.objects.count()  # the tenants' default networks too
    shown = []
    for number in (1, 2):
        params = {"per_page": "2", "page": str(number)}
        body = pages.admin_page.get("/networks/", params).content.decode()
        assert f"of {total} networks" in body
        shown.append(re.findall(r'<tr data-network-id="([^"]+)"', body))
    assert len(shown[0]) == len(shown[1]) == 2 and not set(shown[0]) & set(shown[1])


def test_hosts_page_by_page(pages):
    body = pages.admin_page.get("/hosts/", {"per_page": "1"}).content.decode()
    assert f'data-host-id="{pages.hosts[0].pk}"' in body
    assert f'data-host-id="{pages.hosts[1].pk}"' not in body
    body = pages.admin_page.get("/hosts/", {"per_page": "1", "page": "2"}).content.decode()
    assert f'data-host-id="{pages.hosts[1].pk}"' in body and "page 2 of 2" in body


def leases_shown(body: str) -> list[str]:
    rows = body.split('data-live-fragment="leases"')[1].split("</tbody>")[0]
    return re.findall(r'<td data-field="ip">([^<]+)</td>', rows)


def test_leases_on_the_network_page_by_page(pages):
    for number in (100, 9):  # .9 first: by address, not as text
        Lease.objects.create(
            network=pages.net_a, mac=f"02:00:00:00:00:{number:02x}", ip=f"192.168.10.{number}"
        )
    url = reverse("dashboard:network-detail", args=[pages.net_a.pk])
    body = pages.alice_page.get(url, {"per_page": "1"}).content.decode()
    assert leases_shown(body) == ["192.168.10.9"] and "page 1 of 2" in body
    body = pages.alice_page.get(url, {"per_page": "1", "page": "2"}).content.decode()
    assert leases_shown(body) == ["192.168.10.100"]


def test_event_pages_keep_the_filters(pages):
    url = "/events/"
    params = {"object_type": "instance", "per_page": "1"}
    body = pages.admin_page.get(url, params).content.decode()
    assert links(body)["Next"] == "?object_type=instance&per_page=1&page=2"
    rows = re.findall(
        r'<tr data-event-id="[^"]+"><td><time[^>]*>[^<]*</time></td><td>'
        r"<code>([^<]+)</code></td><td>([^<]+)</td>",
        body,
    )
    assert len(rows) == 1 and rows[0][1] == "instance"


def test_the_pager_is_a_fragment_of_its_own(pages):
    response = pages.admin_page.get("/instances/", {"per_page": "1", "fragment": "pager"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and "page 1 of 2" in body
    assert "fragment" not in links(body)["Next"]  # a live refresh keeps the links clean


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("/instances/", "rows"), ("/networks/", "rows"), ("/events/", "events"), ("/hosts/", "hosts")],
)
def test_list_fragments_render_alone(pages, url, fragment):
    response = pages.admin_page.get(url, {"fragment": fragment})
    assert response.status_code == 200 and b"<html" not in response.content
