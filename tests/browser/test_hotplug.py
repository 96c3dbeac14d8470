"""The hot-plug buttons of an instance's page in Chromium (issue 17), against daphne on
the test database (no agents: the test plays the host's report): Attach and Detach show
the pending state, a double click sends one request, and the interface's row follows
the operation live (pending → active, then releasing)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ciaoweb.instances.models import Attachment
from ciaoweb.networks.services import create_network
from ciaoweb.operations.models import Operation
from ciaoweb.orchestration.reports import apply_attachment_result
from tests.browser import test_dashboard_fixes as fixes
from tests.browser.conftest import log_in, wait_live
from tests.browser.test_dashboard_fixes import (
    PASSWORDS,
    PENDING,
    HeldPosts,
    _container,
    _submit_button,
    _submitted,
)
from tests.browser.test_dashboard_live import agent_applied, off_loop
from tests.worlds import end_operations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

people = fixes.people  # the world of the issue-16 fixes' tests (tenants a and b, hosts)


def _running_with_a_second_network(world: SimpleNamespace):
    instance = _container(world, "hot")
    agent_applied(str(instance.pk))
    storage = create_network(
        tenant=world.tenant_a,
        name="storage",
        kind="sriov",
        physnet="physnet2",
        vlan=200,
        cidr="10.20.0.0/24",
        ipam="controller",
    )
    return instance, storage


def _host_plugged(instance_id: str) -> str:
    """What the host's report does: the new interface is up, its attach succeeded."""
    attachment = Attachment.objects.select_related("instance").get(
        instance_id=instance_id, ifname="eth2"
    )
    errors = apply_attachment_result(
        {
            "instance_id": instance_id,
            "generation": attachment.instance.generation,
            "ok": True,
            "error": "",
            "attachments": [
                {"attachment_id": str(attachment.pk), "ip": attachment.ip, "state": "up"}
            ],
        }
    )
    assert errors == []
    end_operations(instance_id)
    return str(attachment.pk)


def _count(kind: str) -> int:
    return Operation.objects.filter(kind=kind).count()


def test_attach_and_detach_buttons_show_pending_send_once_and_follow_live(
    dashboard_server, people, new_page
):
    url = dashboard_server
    instance, storage = off_loop(_running_with_a_second_network, people)
    page = new_page()
    log_in(page, url, "alice", PASSWORDS["alice"])
    page.goto(f"{url}/instances/{instance.pk}/")
    wait_live(page)

    attach_form = f'form[action="/instances/{instance.pk}/attach/"]'
    page.locator(attach_form).get_by_label("Network").select_option(str(storage.pk))
    held = HeldPosts(page, "**/attach/")
    seen = _submitted(page, attach_form, _submit_button(page, attach_form).dblclick)
    assert seen == {**PENDING, "label": "Attaching…"}
    held.release()
    page.get_by_text(f"Interface eth2 is being plugged into {instance.name}.").wait_for()
    assert held.count == 1 and off_loop(_count, "attach") == 1
    wait_live(page)
    row = page.locator("#network-status tr", has_text="eth2")
    row.locator('[data-field="state"]', has_text="pending").wait_for()

    attachment_id = off_loop(_host_plugged, str(instance.pk))  # pushed over the websocket
    row.locator('[data-field="state"]', has_text="active").wait_for()
    # eth0 has no Detach button; the hot-plugged interface has one
    assert page.get_by_role("button", name="Detach eth0").count() == 0
    detach_form = f'form[action="/instances/{instance.pk}/attachments/{attachment_id}/detach/"]'
    held = HeldPosts(page, "**/detach/")
    asked: list = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    seen = _submitted(page, detach_form, _submit_button(page, detach_form).dblclick)
    assert seen == {**PENDING, "label": "Detaching…"}
    held.release()
    page.get_by_text("Interface eth2 is being unplugged.").wait_for()
    assert held.count == 1 and asked == [f"Detach eth2 from {instance.name}?"]
    assert off_loop(_count, "detach") == 1
    row.locator('[data-field="state"]', has_text="releasing").wait_for()


def test_a_refused_attach_says_why(dashboard_server, people, new_page):
    """The API's 409 (here: the vfs quota) is shown on the page, nothing is made."""
    from ciaoweb.tenancy.quotas import set_quota, usage

    url = dashboard_server
    instance, storage = off_loop(_running_with_a_second_network, people)
    off_loop(lambda: set_quota(people.tenant_a, {"vfs": usage(people.tenant_a)["vfs"]}))
    page = new_page()
    log_in(page, url, "alice", PASSWORDS["alice"])
    page.goto(f"{url}/instances/{instance.pk}/")
    attach_form = f'form[action="/instances/{instance.pk}/attach/"]'
    page.locator(attach_form).get_by_label("Network").select_option(str(storage.pk))
    _submit_button(page, attach_form).click()
    page.get_by_text("quota exceeded: vfs limit 1, in use 1").wait_for()
    assert off_loop(_count, "attach") == 0
