"""Every page renders for an admin and a member, and shows only what the API would."""

import pytest
from django.urls import reverse
from django.utils import timezone

from ciaoweb.events.models import Event
from ciaoweb.instances.models import Instance
from ciaoweb.networks.models import Lease
from ciaoweb.operations.choices import OperationKind, OperationState
from ciaoweb.operations.models import Operation

pytestmark = pytest.mark.django_db

LIST_PAGES = ["/", "/topology/", "/networks/", "/instances/", "/events/"]


def test_anonymous_users_are_sent_to_login(client):
    for url in LIST_PAGES + ["/hosts/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/login/?next=")


def test_login_page_logs_in_and_logout_logs_out(client, world):
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "alice", "password": "secret-alice"})
    assert response.status_code == 302 and response.url == "/"
    assert client.get("/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_login_with_a_wrong_password_says_so(client, world):
    response = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "enter a correct username and password" in response.content.decode()


@pytest.mark.parametrize("url", LIST_PAGES)
def test_list_pages_render_for_admin_and_member(pages, url):
    for page in (pages.admin_page, pages.alice_page):
        response = page.get(url)
        assert response.status_code == 200, url
        assert b'id="live-status"' in response.content


def test_member_lists_show_only_its_tenant_and_shared_networks(pages):
    body = pages.alice_page.get("/networks/").content.decode()
    assert str(pages.net_a.pk) in body and str(pages.shared.pk) in body
    assert str(pages.net_b.pk) not in body
    body = pages.alice_page.get("/instances/").content.decode()
    assert "web-a" in body and "web-b" not in body


def test_admin_lists_show_every_tenant(pages):
    body = pages.admin_page.get("/instances/").content.decode()
    assert "web-a" in body and "web-b" in body


@pytest.mark.parametrize("name", ["network-detail", "instance-detail"])
def test_detail_pages_render_for_owner_and_admin(pages, name):
    obj = pages.net_a if name == "network-detail" else pages.inst_a
    url = reverse(f"dashboard:{name}", args=[obj.pk])
    assert pages.alice_page.get(url).status_code == 200
    assert pages.admin_page.get(url).status_code == 200


@pytest.mark.parametrize("name", ["network-detail", "instance-detail"])
def test_another_tenants_detail_page_is_404(pages, name):
    obj = pages.net_b if name == "network-detail" else pages.inst_b
    assert pages.alice_page.get(reverse(f"dashboard:{name}", args=[obj.pk])).status_code == 404


def test_shared_network_page_is_visible_to_members(pages):
    response = pages.alice_page.get(reverse("dashboard:network-detail", args=[pages.shared.pk]))
    assert response.status_code == 200
    assert b"Delete network" not in response.content  # shared networks are the admins'


def test_hosts_page_is_admin_only(pages):
    assert pages.alice_page.get("/hosts/").status_code == 403
    body = pages.admin_page.get("/hosts/").content.decode()
    assert "node1" in body and "node2" in body and "web-a" in body
    assert "Evacuate node1" in body


def test_hosts_page_shows_what_a_pf_does_not_support(pages):
    igb = {"link_state": False, "min_tx_rate": False, "vlan_8021ad": False}
    pages.hosts[0].pfs.filter(physnet="physnet2").update(capabilities=igb)
    body = pages.admin_page.get("/hosts/").content.decode()
    assert body.count('data-field="capabilities"') == 1
    assert "Not supported by its driver: link_state, min_tx_rate, 802.1ad" in body


def test_member_navigation_has_no_hosts_link(pages):
    assert b'href="/hosts/"' not in pages.alice_page.get("/").content
    assert b'href="/hosts/"' in pages.admin_page.get("/").content


def test_overview_shows_hosts_usage_instances_and_events_to_admins(pages):
    body = pages.admin_page.get("/").content.decode()
    assert "node1" in body and "physnet1" in body
    assert 'role="meter"' in body
    assert 'data-state-count="pending"' in body
    assert "instance.created" in body


def test_overview_hides_hosts_and_other_tenants_events_from_members(pages):
    body = pages.alice_page.get("/").content.decode()
    assert "node2" not in body
    assert "web-b" not in body


def test_topology_shows_every_vf_to_admins(pages):
    body = pages.admin_page.get("/topology/").content.decode()
    assert "<svg" in body and "VLAN 100" in body and "VLAN 101" in body
    assert "web-a" in body and "web-b" in body
    vf = pages.inst_a.attachments.get(network=pages.net_a).vf
    assert f'data-vf-id="{vf.pk}"' in body


def test_topology_shows_members_their_own_vfs_only(pages):
    body = pages.alice_page.get("/topology/").content.decode()
    assert "web-a" in body and "VLAN 100" in body
    assert "web-b" not in body and "VLAN 101" not in body


def test_topology_fragment_is_the_svg_alone(pages):
    response = pages.admin_page.get("/topology/?fragment=svg")
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b"<svg")
    assert pages.admin_page.get("/topology/?fragment=nope").status_code == 404


def test_network_detail_lists_attachments_and_leases_keyed_for_live_updates(pages):
    attachment = pages.inst_a.attachments.get(network=pages.net_a)
    Lease.objects.create(
        network=pages.net_a,
        mac=attachment.mac,
        ip=attachment.ip,
        hostname="web-a",
        attachment=attachment,
    )
    body = pages.alice_page.get(reverse("dashboard:network-detail", args=[pages.net_a.pk]))
    body = body.content.decode()
    assert f'data-lease-mac="{attachment.mac}"' in body
    assert f'data-attachment-id="{attachment.pk}"' in body
    assert f'data-network-id="{pages.net_a.pk}"' in body


def test_instance_detail_shows_network_status_with_vf_and_host(pages):
    attachment = pages.inst_a.attachments.select_related("vf__pf__host").get(network=pages.net_a)
    url = reverse("dashboard:instance-detail", args=[pages.inst_a.pk])
    body = pages.alice_page.get(url).content.decode()
    assert attachment.mac in body and str(attachment.ip) in body
    assert attachment.vf.pci_address in body and attachment.vf.pf.host.name in body
    assert 'class="spinner"' in body  # pending: the agent has not answered
    assert "eth0" in body and "eth1" in body


def test_instance_detail_shows_the_error_reason(pages):
    pages.inst_a.state, pages.inst_a.error = "error", "no VF could be configured"
    pages.inst_a.save()
    body = pages.alice_page.get(reverse("dashboard:instance-detail", args=[pages.inst_a.pk]))
    assert "no VF could be configured" in body.content.decode()


def test_members_get_no_host_choice_on_migrate_or_launch(pages):
    body = pages.alice_page.get(reverse("dashboard:instance-detail", args=[pages.inst_a.pk]))
    assert b'name="host"' not in body.content
    assert b'name="host"' not in pages.alice_page.get("/instances/").content
    assert b'name="host"' in pages.admin_page.get("/instances/").content


def test_status_fragment_renders_the_network_status_table(pages):
    url = reverse("dashboard:instance-detail", args=[pages.inst_a.pk]) + "?fragment=status"
    response = pages.alice_page.get(url)
    assert response.status_code == 200 and b"<table" in response.content
    assert b"<html" not in response.content


def _operation(instance, kind):
    return Operation.objects.filter(instance=instance, kind=kind).latest("created")


def test_instance_detail_shows_its_operations_as_a_timeline(pages):
    create = _operation(pages.inst_a, OperationKind.CREATE)
    Operation.objects.filter(pk=create.pk).update(
        state=OperationState.SUCCEEDED, finished=timezone.now()
    )
    Instance.objects.filter(pk=pages.inst_a.pk).update(state="running")
    url = reverse("dashboard:instance-detail", args=[pages.inst_a.pk])
    migrate = reverse("dashboard:instance-migrate", args=[pages.inst_a.pk])
    assert pages.alice_page.post(migrate).status_code == 302
    migration = _operation(pages.inst_a, OperationKind.MIGRATE)
    Operation.objects.filter(pk=migration.pk).update(
        state=OperationState.FAILED, error="no VF left on the target", finished=timezone.now()
    )
    body = pages.alice_page.get(url).content.decode()
    assert 'data-live-fragment="operations"' in body
    # newest first, each with its state, times, error and steps (its events, oldest first)
    assert body.index(f'data-operation-id="{migration.pk}"') < body.index(
        f'data-operation-id="{create.pk}"'
    )
    assert "op-state-failed" in body and "op-state-succeeded" in body
    assert "no VF left on the target" in body and "Finished" in body
    steps = Event.objects.filter(object_type="operation", object_id=create.pk).order_by("created")
    assert steps and all(event.message in body for event in steps)


def test_operations_fragment_is_the_timeline_alone(pages):
    url = reverse("dashboard:instance-detail", args=[pages.inst_a.pk]) + "?fragment=operations"
    response = pages.alice_page.get(url)
    assert response.status_code == 200 and b"<html" not in response.content
    create = _operation(pages.inst_a, OperationKind.CREATE)
    assert f'data-operation-id="{create.pk}"'.encode() in response.content
    assert b'class="spinner"' in response.content  # pending: not advanced yet


def test_hosts_page_shows_the_last_evacuation(pages):
    host = pages.hosts[0]
    evacuate = reverse("dashboard:host-evacuate", args=[host.pk])
    assert pages.admin_page.post(evacuate).status_code == 302
    evacuation = Operation.objects.get(kind=OperationKind.EVACUATE, host=host)
    body = pages.admin_page.get("/hosts/").content.decode()
    assert f'data-operation-id="{evacuation.pk}"' in body and "Last evacuate" in body
