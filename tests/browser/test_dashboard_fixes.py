"""The dashboard fixes of issue 16 in Chromium, against daphne on the test database (the
`dashboard_server` of tests/browser/conftest.py; no agents, the test plays them):

- Launch, Migrate and Delete show a pending state on submit, and a second click or
  submit sends nothing; the server acts once on the same form posted twice;
- after the websocket drops and comes back, the page refetches what it shows, so a change
  made while it was down appears (and the indicator says so);
- the topology of 16 hosts x 64 VFs stays about as tall as 16 hosts x 4 VFs;
- list pages paginate, their links keeping the other query parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import NetworkRequest, create_instance
from ciaoweb.inventory.services import register_inventory
from tests.api.helpers import inventory
from tests.browser.conftest import log_in, wait_live
from tests.browser.flows import assert_not_reloaded, mark_page
from tests.browser.test_dashboard_live import agent_applied, off_loop
from tests.worlds import in_process_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORDS = {"root": "fixes-admin-pw", "alice": "alice-password", "bob": "bob-password"}
RACK = [f"rack{n:02d}" for n in range(1, 17)]

# Live.js's websocket, made refusable from the test: while `__wsBlocked` is set every new
# connection goes to a closed port (and fails), and `__sockets` holds each one made.
BLOCKABLE_WEBSOCKET = """
(() => {
  const Real = window.WebSocket;
  window.__sockets = [];
  window.__wsBlocked = false;
  function Blockable(url, protocols) {
    const socket = new Real(window.__wsBlocked ? "ws://127.0.0.1:1/" : url, protocols);
    window.__sockets.push(socket);
    return socket;
  }
  Blockable.prototype = Real.prototype;
  Object.assign(Blockable, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = Blockable;
})();
"""


@pytest.fixture
def people(browser) -> SimpleNamespace:
    return off_loop(in_process_world, PASSWORDS)


def _instance_count(name: str) -> int:
    return Instance.objects.filter(name=name).count()


def _submit_button(page, form_selector: str):
    return page.locator(f"{form_selector} button[type=submit]")


class HeldPosts:
    """Every POST to `pattern` is held until `release()`: the page stays as it is while
    its request is in flight. `count` is how many were sent."""

    def __init__(self, page, pattern: str) -> None:
        self.count, self.released, self.routes = 0, False, []
        page.route(pattern, self._handle)

    def _handle(self, route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        self.count += 1
        if self.released:
            route.continue_()
        else:
            self.routes.append(route)

    def release(self) -> None:
        self.released = True
        for route in self.routes:
            route.continue_()


# Playwright evaluates nothing in a page whose navigation is pending, so the page looks
# at itself: once the form is submitted (and live.js has handled that), what its button
# shows, then whether submitting it once more from script is cancelled by the guard (a
# window listener runs after live.js's). Reported on the console.
PROBE = """sel => {
  const form = document.querySelector(sel);
  window.addEventListener("submit", function first(event) {
    if (event.target !== form || event.defaultPrevented) return;
    window.removeEventListener("submit", first);
    const button = form.querySelector("button[type=submit]");
    const seen = {
      busy: form.getAttribute("aria-busy"), disabled: button.disabled,
      label: button.textContent.trim(),
    };
    setTimeout(() => {
      const note = again => { seen.againCancelled = again.defaultPrevented; };
      window.addEventListener("submit", note, { once: true });
      form.requestSubmit();
      console.log("ciao-probe " + JSON.stringify(seen));
    }, 0);
  });
}"""


def _submitted(page, form_selector: str, act: Callable[[], Any]) -> dict:
    """What the page showed once `act` (a click) submitted the form (see PROBE)."""
    page.evaluate(PROBE, form_selector)
    with page.expect_console_message(lambda m: m.text.startswith("ciao-probe ")) as message:
        act()
    return json.loads(message.value.text.split(" ", 1)[1])


PENDING = {"busy": "true", "disabled": True, "againCancelled": True}


def test_launch_shows_pending_and_a_double_click_creates_one_instance(
    dashboard_server, people, new_page
):
    url = dashboard_server
    page = new_page()
    log_in(page, url, "alice", PASSWORDS["alice"])
    page.goto(f"{url}/instances/")
    page.get_by_label("Name").fill("twice")
    page.get_by_label(re.compile(r"/data — VLAN")).check()
    held = HeldPosts(page, "**/instances/")

    form = 'form[action="/instances/"]'
    seen = _submitted(page, form, _submit_button(page, form).dblclick)
    assert seen == {**PENDING, "label": "Launching…"}

    held.release()
    page.wait_for_url(re.compile(r"/instances/[0-9a-f-]{36}/$"))
    assert held.count == 1
    assert off_loop(_instance_count, "twice") == 1

    # The server acts once too: the same rendered form posted twice (no script to stop
    # it) lands both times on the one instance it created.
    page.unroute("**/instances/")
    page.goto(f"{url}/instances/")
    page.get_by_label("Name").fill("again")
    page.get_by_label(re.compile(r"/data — VLAN")).check()
    landed = page.evaluate(
        """async () => {
          const form = document.querySelector('form[action="/instances/"]');
          const body = () => new FormData(form);
          const first = await fetch(form.action, { method: "POST", body: body() });
          const second = await fetch(form.action, { method: "POST", body: body() });
          return [first.url, second.url, await second.text()];
        }"""
    )
    assert re.search(r"/instances/[0-9a-f-]{36}/$", landed[0]), landed[0]
    assert landed[1] == landed[0]
    assert "already submitted" in landed[2]
    assert off_loop(_instance_count, "again") == 1


def _container(world: SimpleNamespace, name: str):
    """A pending container of tenant a on its network."""
    return create_instance(
        tenant=world.tenant_a,
        name=name,
        kind="container",
        networks=[NetworkRequest(network=world.net_a)],
    )


def test_migrate_and_delete_show_pending_and_send_once(dashboard_server, people, new_page):
    url = dashboard_server
    instance = off_loop(_container, people, "mover")
    off_loop(agent_applied, str(instance.pk))
    page = new_page()
    log_in(page, url, "alice", PASSWORDS["alice"])
    detail = f"{url}/instances/{instance.pk}/"
    page.goto(detail)
    wait_live(page)

    # Cancelling the confirmation leaves the button as it was.
    delete_form = f'form[action="/instances/{instance.pk}/delete/"]'
    page.once("dialog", lambda dialog: dialog.dismiss())
    _submit_button(page, delete_form).click()
    assert _submit_button(page, delete_form).is_enabled()

    migrate_form = f'form[action="/instances/{instance.pk}/migrate/"]'
    held = HeldPosts(page, "**/migrate/")
    seen = _submitted(page, migrate_form, _submit_button(page, migrate_form).dblclick)
    assert seen == {**PENDING, "label": "Migrating…"}
    held.release()
    page.get_by_text("Instance mover is migrating.").wait_for()  # the next page's message
    assert held.count == 1
    wait_live(page)

    held = HeldPosts(page, "**/delete/")
    asked: list = []  # confirmations; a second one (accepted) would post again
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    seen = _submitted(page, delete_form, _submit_button(page, delete_form).dblclick)
    assert seen == {**PENDING, "label": "Deleting…"}
    held.release()
    page.wait_for_url(f"{url}/instances/")
    assert held.count == 1 and asked == ["Delete instance mover?"]


def _late_changes(world: SimpleNamespace, running_id: str) -> str:
    """While the page is disconnected: a new instance, and another one's state change."""
    late = _container(world, "late")
    agent_applied(running_id)
    return str(late.pk)


def test_after_a_reconnect_the_page_shows_what_it_missed(dashboard_server, people, new_page):
    url = dashboard_server
    early = off_loop(_container, people, "early")
    page = new_page()
    page.context.add_init_script(BLOCKABLE_WEBSOCKET)
    log_in(page, url, "alice", PASSWORDS["alice"])
    page.goto(f"{url}/instances/")
    wait_live(page)
    row = f'tr[data-instance-id="{early.pk}"] [data-field=state]'
    assert page.locator(row).inner_text().strip() == "pending"
    mark_page(page)

    page.evaluate("window.__wsBlocked = true; window.__sockets.at(-1).close()")
    page.wait_for_selector('#live-status[data-state="reconnecting"]')
    assert page.locator("#live-status").inner_text() == "reconnecting…"
    late_id = off_loop(_late_changes, people, str(early.pk))
    page.evaluate("window.__wsBlocked = false")

    page.wait_for_function("() => document.body.dataset.resyncs === '1'")
    assert page.locator("#live-status").get_attribute("data-state") == "live"
    assert page.locator(f'tr[data-instance-id="{late_id}"]').count() == 1
    assert page.locator(row).inner_text().strip() == "running"
    assert_not_reloaded(page)

    # Live updates still arrive on the new socket.
    off_loop(agent_applied, late_id)
    page.wait_for_function(
        'id => document.querySelector(`tr[data-instance-id="${id}"] [data-field=state]`)'
        ".textContent.trim() === 'running'",
        arg=late_id,
    )


def _rack(vfs: int) -> None:
    for name in RACK:
        register_inventory(name, inventory(name, {"physnet1": vfs}))


def _topology_height(page, url: str) -> int:
    page.goto(f"{url}/topology/")
    return page.evaluate("document.documentElement.scrollHeight")


def test_topology_of_16_hosts_by_64_vfs_stays_compact(dashboard_server, people, new_page):
    url = dashboard_server
    page = new_page()
    log_in(page, url, "root", PASSWORDS["root"])
    off_loop(_rack, 4)
    baseline = _topology_height(page, url)
    off_loop(_rack, 64)  # the same 16 hosts, their PFs re-reported with 64 VFs each
    height = _topology_height(page, url)
    print(f"topology page height: 16 hosts x 4 VFs {baseline}px, x 64 VFs {height}px")
    assert page.locator("svg g.vf").count() == 16 * 64 + 2 * 6
    # 16 times the VFs, hardly any taller: each PF's VFs are a grid of small cells.
    assert height < 1.5 * baseline, (baseline, height)
    rows = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll("svg g.pf")].map(pf =>
             new Set([...pf.querySelectorAll("g.vf rect")].map(r => r.getAttribute("y"))).size))"""
    )
    assert rows == 2  # 64 VFs, 32 to a row


def test_list_pages_paginate_and_keep_their_query(dashboard_server, people, new_page):
    url = dashboard_server
    page = new_page()
    log_in(page, url, "root", PASSWORDS["root"])
    off_loop(_rack, 1)
    page.goto(f"{url}/hosts/?per_page=5")
    assert page.locator("section.host").count() == 5
    pager = page.locator("nav.pager")
    assert "page 1 of 4" in pager.inner_text()
    pager.get_by_role("link", name="Next").click()
    page.wait_for_url(f"{url}/hosts/?per_page=5&page=2")
    assert page.locator("section.host").count() == 5
    assert "page 2 of 4" in page.locator("nav.pager").inner_text()
    page.locator("nav.pager").get_by_role("link", name="Last").click()
    page.wait_for_url(f"{url}/hosts/?per_page=5&page=4")
    assert page.locator("section.host").count() == 18 - 15  # node1, node2 and rack01..16
