"""/metrics: who may scrape it, which families it has, and values that follow a launch."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ciaoweb.instances.models import Instance
from ciaoweb.inventory.services import register_inventory
from ciaoweb.orchestration.dhcp import ensure_server
from tests.api.helpers import inventory, url
from tests.worlds import provisioned

from .conftest import scrape, value

FAMILIES = {
    "ciao_http_request_duration_seconds",
    "ciao_instances",
    "ciao_vfs",
    "ciao_operations",
    "ciao_operation_duration_seconds",
    "ciao_leases",
    "ciao_host_heartbeat_age_seconds",
    "ciao_host_info",
    "ciao_dhcp_servers",
}


def test_anonymous_is_401_and_members_403(world):
    assert Client().get("/metrics").status_code == 401
    reply = world.alice.get("/metrics")
    assert reply.status_code == 403
    assert reply.json()["detail"]  # a JSON error, whatever the scraper accepts


def test_an_admin_token_or_session_scrapes(world):
    token = Token.objects.create(user=world.admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    reply = client.get("/metrics", HTTP_ACCEPT="text/plain")
    assert reply.status_code == 200
    assert reply["Content-Type"].startswith("text/plain")
    session = Client()
    session.force_login(world.admin_user)
    assert session.get("/metrics").status_code == 200


def test_openmetrics_when_asked_for(world):
    reply = world.admin.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert reply.status_code == 200
    assert reply["Content-Type"].startswith("application/openmetrics-text")
    assert reply.content.rstrip().endswith(b"# EOF")


def test_every_family_is_there(world):
    world.admin.get(url("hosts"))  # one request counted before the scrape
    names = {name for name, _ in scrape(world.admin)}
    for family in FAMILIES:
        assert any(name.startswith(family) for name in names), family


def test_values_follow_an_instance_launch(world):
    before = scrape(world.admin)
    body = {"name": "web", "kind": "container", "networks": [{"network": str(world.net_a.pk)}]}
    reply = world.alice.post(url("instances"), body, format="json")
    assert reply.status_code == 201, reply.data
    instance = Instance.objects.select_related("host").get(pk=reply.data["id"])
    launched = scrape(world.admin)

    def delta(samples, name, **labels):
        return value(samples, name, **labels) - value(before, name, **labels)

    assert delta(launched, "ciao_instances", state="pending") == 1
    vf = {"host": instance.host.name, "physnet": "physnet1"}
    assert delta(launched, "ciao_vfs", **vf, state="free") == -1
    assert delta(launched, "ciao_vfs", **vf, state="reserved") == 1
    assert delta(launched, "ciao_operations", kind="create", state="pending") == 1
    request = {"method": "POST", "route": "instance-list", "status": "2xx"}
    assert value(launched, "ciao_http_request_duration_seconds_count", **request) >= 1

    provisioned(instance)
    running = scrape(world.admin)
    assert delta(running, "ciao_instances", state="running") == 1
    assert delta(running, "ciao_operations", kind="create", state="succeeded") == 1
    finished = {"kind": "create", "state": "succeeded"}
    assert delta(running, "ciao_operation_duration_seconds_count", **finished) == 1
    assert delta(running, "ciao_operation_duration_seconds_bucket", **finished, le="+Inf") == 1


def test_request_routes_are_pattern_names_not_paths(world):
    world.admin.get(url("hosts", world.hosts[0]))
    world.admin.get("/no/such/page/")
    samples = scrape(world.admin)
    routes = {dict(labels).get("route") for name, labels in samples if "request" in name}
    assert "host-detail" in routes and "unmatched" in routes
    assert not any(str(world.hosts[0].pk) in str(route) for route in routes)


def test_hosts_heartbeats_and_dhcp_servers(world):
    netnode = register_inventory(
        "netnode", {**inventory("netnode", {"physnet1": 2}), "is_network_node": True}
    )
    ensure_server(world.net_a.pk)  # placed on the network node (its spec is recorded)
    samples = scrape(world.admin)
    assert value(samples, "ciao_dhcp_servers", host="netnode", state="pending") == 1
    assert value(samples, "ciao_dhcp_servers", host="node1", state="pending") == 0
    age = value(samples, "ciao_host_heartbeat_age_seconds", host=netnode.name)
    assert age >= 0
    info = {"host": "node1", "state": "online", "agent_version": ""}
    assert value(samples, "ciao_host_info", **info) == 1


@pytest.mark.django_db
def test_kept_out_of_the_api_schema():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert not any(path.strip("/") in ("metrics", "healthz", "readyz") for path in paths)


def test_requests_through_asgi_are_counted_too():
    # daphne serves the site through the ASGI handler: the middleware's async path.
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from ciaoweb.observability.metrics import REQUEST_SECONDS

    def count() -> float:  # the request family only: the others need the database
        labels = {"method": "GET", "route": "healthz", "status": "2xx"}
        (family,) = REQUEST_SECONDS.collect()
        found = [
            s.value for s in family.samples if s.name.endswith("_count") and s.labels == labels
        ]
        return found[0] if found else 0.0

    before = count()
    reply = async_to_sync(AsyncClient().get)("/healthz")
    assert reply.status_code == 200
    assert count() == before + 1
