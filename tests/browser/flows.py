"""Dashboard steps shared by the daphne-backed and the cluster-backed browser tests."""

from __future__ import annotations

import re

from tests.browser.conftest import wait_live


def create_network(page, base_url: str, name: str, cidr: str, tenant: str | None = None) -> str:
    """Fill the create form; returns the new network's id (from the detail page URL)."""
    page.goto(f"{base_url}/networks/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Physical network").fill("physnet1")
    page.get_by_label("CIDR").fill(cidr)
    page.get_by_label("IP address management").select_option("controller")
    return _submit(page, "Create network", "networks", tenant)


def launch_instance(page, base_url: str, name: str, network: str, tenant: str | None = None) -> str:
    page.goto(f"{base_url}/instances/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Kind").select_option("container")
    page.get_by_label(re.compile(rf"/{network} — VLAN")).check()
    return _submit(page, "Launch", "instances", tenant)


def _submit(page, button: str, collection: str, tenant: str | None) -> str:
    """Pick the tenant (admins), submit, and wait for the new object's live detail page;
    returns the object's id (from that page's URL)."""
    if tenant is not None:
        page.locator("#id_tenant").select_option(label=tenant)
    page.get_by_role("button", name=button).click()
    page.wait_for_url(re.compile(rf"/{collection}/[0-9a-f-]{{36}}/$"))
    wait_live(page)
    return page.url.rstrip("/").rsplit("/", 1)[1]


def mark_page(page) -> None:
    """A marker that a reload would wipe: live updates must arrive without one."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


def instance_state(page) -> str:
    return page.locator("#instance-state [data-field=state]").inner_text().strip()


def wait_instance_state(page, state: str) -> None:
    page.wait_for_function(
        "s => document.querySelector('#instance-state [data-field=state]')"
        ".textContent.trim() === s",
        arg=state,
    )


def wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([sel, t]) => { const e = document.querySelector(sel); "
        "return e && e.textContent.trim() === t; }",
        arg=[selector, text],
    )
