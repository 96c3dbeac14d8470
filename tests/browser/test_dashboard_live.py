"""The dashboard in Chromium against a real daphne (ASGI, websockets, Redis channel layer)
on the test database. No agents run: the test plays them by calling the controller-side
handlers agents' results go through (orchestration.results), so every live update the
browser sees travels the production path: service → record → on_commit → Redis → daphne
→ /ws/events/ → live.js."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import (
    NetworkRequest,
    create_instance,
    finalize_instance_deletion,
)
from ciaoweb.inventory.models import Host
from ciaoweb.networks.services import create_network as create_network_row
from ciaoweb.operations.choices import OperationState
from ciaoweb.operations.models import Operation
from ciaoweb.orchestration import engine
from ciaoweb.orchestration.reports import apply_instance_result
from ciaoweb.orchestration.results import apply_lease_event
from tests.browser.conftest import log_in, screenshot, wait_live
from tests.browser.flows import (
    assert_not_reloaded,
    create_network,
    launch_instance,
    mark_page,
    wait_instance_state,
    wait_text,
)
from tests.worlds import end_operations, in_process_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMIN_PASSWORD = "browser-admin-pw"


def off_loop(function: Callable[..., Any], *args: Any) -> Any:
    """Run ORM work (and the websocket publish after its commit) in a worker thread:
    Playwright's sync API keeps an asyncio loop running in the test's thread, where
    Django refuses the ORM and asgiref refuses async_to_sync."""

    def run() -> Any:
        try:
            return function(*args)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def people(browser):
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    assert "Redis" in layer, f"live updates need the Redis channel layer, not {layer}"
    return off_loop(_create_people)


def _create_people() -> SimpleNamespace:
    passwords = {"root": ADMIN_PASSWORD, "alice": "alice-password", "bob": "bob-password"}
    return in_process_world(passwords, networks=False)


def advance_pending() -> None:
    """What the controller's worker does with the operations daphne queued (the server
    only records its requests here): start each pending one. Node tasks are recorded."""
    for operation_id in Operation.objects.filter(state=OperationState.PENDING).values_list(
        "pk", flat=True
    ):
        engine.advance(operation_id)


def agent_applied(instance_id: str) -> Instance:
    """What the agent's `instance_applied` result does: plugged, IPs as reserved, and
    the operation it answered ended."""
    instance = Instance.objects.get(pk=instance_id)
    apply_instance_result(
        {
            "instance_id": str(instance.pk),
            "generation": instance.generation,
            "ok": True,
            "error": "",
            "netns": f"ciao-{instance.tenant.name}-{instance.name}",
            "attachments": [
                {"attachment_id": str(a.pk), "ip": a.ip, "state": "active"}
                for a in instance.attachments.all()
            ],
        }
    )
    end_operations(instance_id)
    return Instance.objects.get(pk=instance_id)


def dnsmasq_lease(network_id: str, instance: Instance) -> str:
    """What our dnsmasq's lease hook reports when the instance's DHCP client asks."""
    attachment = instance.attachments.get(network_id=network_id)
    apply_lease_event(
        {
            "network_id": network_id,
            "mac": attachment.mac,
            "ip": attachment.ip,
            "hostname": instance.name,
            "expires": int(time.time()) + 600,
            "action": "add",
        }
    )
    return attachment.mac


def _hosts_of(instance_id: str) -> tuple[str, str]:
    """(the instance's host, another host) by name."""
    instance = Instance.objects.select_related("host").get(pk=instance_id)
    other = Host.objects.exclude(pk=instance.host_id).values_list("name", flat=True).first()
    return instance.host.name, other


def test_network_instance_lease_migrate_delete_live(dashboard_server, people, new_page):
    url = dashboard_server
    admin = new_page()
    log_in(admin, url, "root", ADMIN_PASSWORD)

    network_id = create_network(admin, url, "storage", "10.60.0.0/24", tenant="tenant-a")
    network_page = admin  # stays open on the network detail page from here on
    mark_page(network_page)

    launcher = network_page.context.new_page()
    instance_id = launch_instance(launcher, url, "web1", "storage", tenant="tenant-a")
    assert launcher.locator("#instance-state .spinner").is_visible()  # pending/provisioning
    mark_page(launcher)

    instance = off_loop(agent_applied, instance_id)
    wait_instance_state(launcher, "running")
    assert launcher.locator("#instance-state .spinner").count() == 0
    assert_not_reloaded(launcher)

    mac = off_loop(dnsmasq_lease, network_id, instance)
    row = network_page.locator(f'#leases tr[data-lease-mac="{mac}"]')
    row.wait_for()
    assert row.locator('[data-field="hostname"]').inner_text() == "web1"
    assert row.locator('[data-field="state"]').inner_text().strip() == "active"
    network_page.wait_for_function(
        "m => /^in \\d+m \\d\\ds$/.test(document.querySelector("
        '`#leases tr[data-lease-mac="${m}"] time`).textContent)',
        arg=mac,
    )
    assert_not_reloaded(network_page)
    screenshot(network_page, "network-detail")
    screenshot(launcher, "instance-detail")

    # A second tab watches the instance while the first one migrates it.
    source, target = off_loop(_hosts_of, instance_id)
    watcher = network_page.context.new_page()
    watcher.goto(f"{url}/instances/{instance_id}/")
    wait_live(watcher)
    assert watcher.locator("#instance-host").inner_text().strip() == source
    mark_page(watcher)
    launcher.locator("#id_host").select_option(target)
    launcher.get_by_role("button", name="Migrate").click()
    launcher.wait_for_load_state()
    wait_instance_state(watcher, "migrating")
    assert watcher.locator("#instance-state .spinner").is_visible()

    off_loop(advance_pending)  # the controller's worker claims the target's VFs
    off_loop(agent_applied, instance_id)  # the target host's agent reports success
    wait_text(watcher, "#instance-host", target)
    wait_instance_state(watcher, "running")
    watcher.wait_for_function(
        "h => [...document.querySelectorAll('#network-status [data-field=vf_host]')]"
        ".some(td => td.textContent.trim() === h)",
        arg=target,
    )
    assert_not_reloaded(watcher)

    listing = network_page.context.new_page()
    listing.goto(f"{url}/instances/")
    wait_live(listing)
    watcher.once("dialog", lambda dialog: dialog.accept())
    watcher.get_by_role("button", name="Delete instance").click()
    watcher.wait_for_url(f"{url}/instances/")
    listing.wait_for_function(
        'id => document.querySelector(`tr[data-instance-id="${id}"] [data-field=state]`)'
        "?.textContent.trim() === 'deleting'",
        arg=instance_id,
    )
    assert off_loop(finalize_instance_deletion, instance_id)  # the agent released the VFs
    listing.locator(f'tr[data-instance-id="{instance_id}"]').wait_for(state="detached")


def _network_with_instance(tenant, name: str, cidr: str, instance_name: str | None):
    network = create_network_row(
        tenant=tenant, name=name, kind="sriov", physnet="physnet1", cidr=cidr, ipam="controller"
    )
    if instance_name is None:
        return network, None, None
    instance = create_instance(
        tenant=tenant, name=instance_name, kind="vm", networks=[NetworkRequest(network=network)]
    )
    return network, instance, instance.attachments.get(network=network).vf


def test_overview_and_topology_show_the_cluster(dashboard_server, people, new_page):
    _, instance, vf = off_loop(
        _network_with_instance, people.tenant_a, "data", "10.70.0.0/24", "db1"
    )
    page = new_page()
    log_in(page, dashboard_server, "root", ADMIN_PASSWORD)
    assert page.locator('[role="meter"]').count() >= 2
    screenshot(page, "overview")

    page.goto(f"{dashboard_server}/topology/")
    wait_live(page)
    chip = page.locator(f'svg g.vf[data-vf-id="{vf.pk}"]')
    assert "db1" in chip.text_content()
    mark_page(page)
    off_loop(agent_applied, str(instance.pk))  # the VF goes in_use: the SVG is redrawn live
    page.wait_for_selector(f'svg g.vf.vf-in_use[data-vf-id="{vf.pk}"]')
    assert_not_reloaded(page)
    screenshot(page, "topology")


def test_member_cannot_reach_another_tenants_pages(dashboard_server, people, new_page):
    network, _, _ = off_loop(
        _network_with_instance, people.tenant_a, "private", "10.80.0.0/24", None
    )
    page = new_page(width=390, height=844)  # a phone
    log_in(page, dashboard_server, "bob", "bob-password")
    assert page.goto(f"{dashboard_server}/networks/{network.pk}/").status == 404
    assert page.goto(f"{dashboard_server}/hosts/").status == 403
    page.goto(f"{dashboard_server}/networks/")
    assert page.locator(f'tr[data-network-id="{network.pk}"]').count() == 0
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.goto(f"{dashboard_server}/instances/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
