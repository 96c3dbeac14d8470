"""The dashboard flow against the live cluster (real agents, simulator, dnsmasq): create
an SR-IOV network, launch an instance on it, watch its DHCP lease appear on the open
network page, migrate it and watch its host change, delete it — no reloads.

Runs after test_dashboard_live.py (file order), so the committed screenshots come from
the real cluster when both run.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in, screenshot, wait_live
from tests.browser.flows import (
    assert_not_reloaded,
    create_network,
    launch_instance,
    mark_page,
    wait_instance_state,
)
from tests.worlds import LiveWorld, ok

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# Real agents plug VFs and run DHCP: allow more than the daphne-only tests.
CLUSTER_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def tenants(cluster) -> dict:
    """Two tenants with a member each, created through the REST API (tests/worlds.py)."""
    live = LiveWorld(cluster, suffix="")
    made = {}
    for name in ("browser-a", "browser-b"):
        tenant = live.tenant(name)
        made[name] = {"id": tenant.id, "username": tenant.username, "password": tenant.password}
    yield made
    live.close()


@pytest.fixture
def cluster_page(static_collected, cluster, new_page):
    def make(**size):
        page = new_page(**size)
        page.context.set_default_timeout(CLUSTER_TIMEOUT_MS)
        return page

    return make


def test_create_launch_lease_migrate_delete_live(cluster, tenants, cluster_page):
    url = cluster.url
    network_page = cluster_page()
    log_in(network_page, url, cluster.admin_username, cluster.admin_password)
    network_id = create_network(
        network_page, url, "browser-net", "10.91.0.0/24", tenant="browser-a"
    )
    mark_page(network_page)

    launcher = network_page.context.new_page()
    instance_id = launch_instance(launcher, url, "web1", "browser-net", tenant="browser-a")
    mark_page(launcher)
    wait_instance_state(launcher, "running")
    assert launcher.locator("#instance-error").is_hidden()
    assert_not_reloaded(launcher)

    instance = ok(cluster.api.get(f"/api/v1/instances/{instance_id}/"))
    mac = next(a["mac"] for a in instance["attachments"] if a["network"] == network_id)
    ip = next(a["ip"] for a in instance["attachments"] if a["network"] == network_id)
    row = network_page.locator(f'#leases tr[data-lease-mac="{mac}"]')
    row.wait_for()
    network_page.wait_for_function(
        '([m, ip]) => document.querySelector(`#leases tr[data-lease-mac="${m}"] '
        "[data-field=ip]`)?.textContent.trim() === ip",
        arg=[mac, ip],
    )
    assert_not_reloaded(network_page)
    screenshot(network_page, "network-detail")
    screenshot(launcher, "instance-detail")

    watcher = network_page.context.new_page()
    watcher.goto(f"{url}/instances/{instance_id}/")
    wait_live(watcher)
    source = watcher.locator("#instance-host").inner_text().strip()
    mark_page(watcher)
    launcher.get_by_role("button", name="Migrate").click()  # the scheduler chooses
    launcher.wait_for_load_state()
    watcher.wait_for_function(
        "h => { const e = document.querySelector('#instance-host'); "
        "return e && e.textContent.trim() !== h && e.textContent.trim() !== '—'; }",
        arg=source,
    )
    wait_instance_state(watcher, "running")
    target = watcher.locator("#instance-host").inner_text().strip()
    assert target != source
    assert ok(cluster.api.get(f"/api/v1/instances/{instance_id}/"))["host_name"] == target
    assert_not_reloaded(watcher)

    overview = network_page.context.new_page()
    overview.goto(f"{url}/")
    wait_live(overview)
    screenshot(overview, "overview")
    overview.goto(f"{url}/topology/")
    wait_live(overview)
    overview.wait_for_selector("svg g.vf.vf-in_use")
    screenshot(overview, "topology")

    listing = overview
    listing.goto(f"{url}/instances/")
    wait_live(listing)
    watcher.once("dialog", lambda dialog: dialog.accept())
    watcher.get_by_role("button", name="Delete instance").click()
    watcher.wait_for_url(f"{url}/instances/")
    listing.locator(f'tr[data-instance-id="{instance_id}"]').wait_for(state="detached")
    cluster.wait_for(
        lambda: cluster.api.get(f"/api/v1/instances/{instance_id}/").status_code == 404,
        timeout=CLUSTER_TIMEOUT_MS / 1000,
        what="instance deleted",
    )


def test_member_gets_404_for_another_tenants_pages(cluster, tenants, cluster_page):
    network = ok(
        cluster.api.post(
            "/api/v1/networks/",
            json={
                "tenant": tenants["browser-a"]["id"],
                "name": "private",
                "kind": "sriov",
                "physnet": "physnet1",
                "cidr": "10.92.0.0/24",
                "ipam": "controller",
            },
        )
    )
    page = cluster_page()
    member = tenants["browser-b"]
    log_in(page, cluster.url, member["username"], member["password"])
    assert page.goto(f"{cluster.url}/networks/{network['id']}/").status == 404
    assert page.goto(f"{cluster.url}/hosts/").status == 403
    ok(cluster.api.delete(f"/api/v1/networks/{network['id']}/"))
