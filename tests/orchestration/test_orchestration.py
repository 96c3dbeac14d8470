"""The controller side of provisioning, in-process: what is sent to which node, how agent
reports change the database, and how stale or late reports are ignored.

Node tasks are recorded (settings.CIAO_DISPATCH = "record"), not sent to a broker.
"""

from __future__ import annotations

import pytest

from ciaoweb import taskrouting as names
from ciaoweb.instances.choices import InstanceState, IpSource
from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import NetworkRequest, create_instance, migrate_instance
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.choices import LeaseState
from ciaoweb.networks.models import Lease
from ciaoweb.networks.services import create_network
from ciaoweb.orchestration import dispatch, migration, results, sender
from ciaoweb.orchestration.dhcp import ensure_server
from ciaoweb.orchestration.models import DhcpServer, OverlaySegment
from ciaoweb.orchestration.specs import reconcile_plan
from ciaoweb.tenancy.services import create_tenant
from tests.api.helpers import inventory


@pytest.fixture(autouse=True)
def no_publish(monkeypatch):
    monkeypatch.setattr("ciaoweb.events.services.notify", lambda *args: None)


@pytest.fixture
def sent():
    """Node-task signatures recorded during the test, as (task name, node, kwargs)."""
    sender.recorded.clear()

    def flatten():
        out = []
        for sig in sender.recorded:
            for task in getattr(sig, "tasks", None) or [sig]:  # a chain holds several
                out.append((task.task, task.kwargs["node"], task.kwargs))
        return out

    yield flatten
    sender.recorded.clear()


@pytest.fixture
def cloud(db, django_capture_on_commit_callbacks):
    """A tenant, two compute hosts and a network node, a controller-IPAM network."""
    for name in ("node1", "node2"):
        register_inventory(
            name, {**inventory(name, {"physnet1": 2}), "mgmt_address": f"10.250.0.{name[-1]}"}
        )
    register_inventory(
        "netnode",
        {
            **inventory("netnode", {"physnet1": 2}),
            "is_network_node": True,
            "mgmt_address": "10.250.0.9",
        },
    )
    tenant = create_tenant("acme")
    with django_capture_on_commit_callbacks(execute=True):
        network = create_network(
            tenant=tenant,
            name="data",
            kind="sriov",
            physnet="physnet1",
            vlan=100,
            cidr="192.168.10.0/24",
            ipam="controller",
            dns_domain="acme.test",
        )
    return tenant, network


def _launch(cloud, name="web", host="node1", kind="container"):
    tenant, network = cloud
    return create_instance(
        tenant=tenant,
        name=name,
        kind=kind,
        networks=[NetworkRequest(network=network)],
        host=Host.objects.get(name=host),
    )


def _ok_result(instance, host, ip_by_ifname=None):
    instance.refresh_from_db()
    return {
        "instance_id": str(instance.pk),
        "generation": instance.generation,
        "host": host,
        "ok": True,
        "netns": f"ciao-i-{instance.name}",
        "error": "",
        "attachments": [
            {
                "attachment_id": str(a.pk),
                "state": "up",
                "ip": (ip_by_ifname or {}).get(a.ifname),
                "ip_source": None,
                "error": "",
            }
            for a in instance.attachments.all()
        ],
    }


def test_network_gets_a_dhcp_server_on_the_network_node(cloud, sent):
    _, network = cloud
    server = DhcpServer.objects.get(network=network)
    assert server.host.name == "netnode"
    assert server.vf.state == VfState.IN_USE  # never handed to an instance
    ensure_server(network.pk)
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.ENSURE_DHCP_SERVER, "netnode")
    assert kwargs["spec"]["server_ip"] == "192.168.10.254"


def test_launch_sends_reservations_before_the_instance(cloud, sent):
    instance = _launch(cloud)
    dispatch.instance_changed(instance.pk)
    tasks = [(t, n) for t, n, _ in sent()]
    assert tasks[-1] == (names.ENSURE_INSTANCE, "node1")
    assert (names.ENSURE_DHCP_SERVER, "netnode") in tasks[:-1]
    spec = sent()[-1][2]["spec"]
    sriov = [a for a in spec["attachments"] if a["vf"]]
    overlay = [a for a in spec["attachments"] if a["overlay"]]
    assert len(sriov) == 1 and sriov[0]["vlan"] == 100 and sriov[0]["ifname"] == "eth1"
    assert overlay[0]["overlay"]["vni"] == OverlaySegment.objects.get().vni
    assert "10.250.0.1" not in overlay[0]["overlay"]["peers"]  # itself is no peer
    dhcp_spec = next(
        k["spec"]
        for t, _, k in sent()
        if t == names.ENSURE_DHCP_SERVER and k["spec"]["network_id"] == str(cloud[1].pk)
    )
    assert {"mac": sriov[0]["mac"], "ip": sriov[0]["ip"], "hostname": "web"} in dhcp_spec[
        "reservations"
    ]
    assert Instance.objects.get(pk=instance.pk).state == InstanceState.PROVISIONING


def test_agent_result_makes_the_instance_running(cloud):
    instance = _launch(cloud)
    results.apply_instance_result(_ok_result(instance, "node1"))
    instance.refresh_from_db()
    assert instance.state == InstanceState.RUNNING and instance.netns == "ciao-i-web"
    assert set(
        VirtualFunction.objects.filter(attachment__instance=instance).values_list(
            "state", flat=True
        )
    ) == {VfState.IN_USE}


def test_stale_result_is_ignored(cloud):
    instance = _launch(cloud)
    stale = _ok_result(instance, "node1")
    stale["generation"] -= 1
    assert results.apply_instance_result(stale) is None
    assert Instance.objects.get(pk=instance.pk).state == InstanceState.PENDING


def test_failed_result_gives_error_with_reason(cloud):
    instance = _launch(cloud)
    failed = {**_ok_result(instance, "node1"), "ok": False, "error": "eth1: MAC set failed"}
    results.apply_instance_result(failed)
    instance.refresh_from_db()
    assert instance.state == InstanceState.ERROR and "MAC set failed" in instance.error


def test_dhcp_answer_that_contradicts_the_reservation_is_an_error(cloud):
    instance = _launch(cloud)
    results.apply_instance_result(_ok_result(instance, "node1", {"eth1": "192.168.10.200"}))
    instance.refresh_from_db()
    assert instance.state == InstanceState.ERROR and "reservation" in instance.error


def test_reconcile_releases_only_reported_orphans(cloud):
    instance = _launch(cloud)
    vf = VirtualFunction.objects.get(attachment__instance=instance)
    key = f"{vf.pf.name}/{vf.index}"
    owner = str(vf.attachment.pk)
    plan = reconcile_plan(vf.pf.host_id, {key: owner, "pf0/1": "gone-attachment"})
    assert plan["release"] == [{"vf": "pf0/1", "owner": "gone-attachment"}]
    assert plan["configs"][key] == {"owner": owner, "mac": vf.attachment.mac, "vlan": 100}
    # a VF claimed after the report is not in it, so it can never be released by this plan
    assert reconcile_plan(vf.pf.host_id, {})["release"] == []


def test_dynamic_lease_event_sets_the_attachment_ip(cloud):
    tenant, _ = cloud
    network = create_network(
        tenant=tenant,
        name="dyn",
        kind="sriov",
        physnet="physnet1",
        vlan=101,
        cidr="10.9.0.0/24",
        ipam="dynamic",
    )
    instance = create_instance(
        tenant=tenant, name="dyn1", kind="vm", networks=[NetworkRequest(network=network)]
    )
    attachment = instance.attachments.get(network=network)
    results.apply_lease_event(
        {
            "network_id": str(network.pk),
            "action": "add",
            "mac": attachment.mac,
            "ip": "10.9.0.200",
            "hostname": "dyn1",
            "expires": 2_000_000_000,
        }
    )
    attachment.refresh_from_db()
    assert (attachment.ip, attachment.ip_source) == ("10.9.0.200", IpSource.DHCP)
    results.apply_lease_event(
        {"network_id": str(network.pk), "action": "del", "mac": attachment.mac, "ip": "10.9.0.200"}
    )
    assert Lease.objects.get(mac=attachment.mac).state == LeaseState.RELEASED


def test_failed_migration_rolls_back_to_the_source(cloud, sent, django_capture_on_commit_callbacks):
    instance = _launch(cloud)
    results.apply_instance_result(_ok_result(instance, "node1"))
    old_vf = VirtualFunction.objects.get(attachment__instance=instance)
    with django_capture_on_commit_callbacks(execute=True):
        migrate_instance(Instance.objects.get(pk=instance.pk), Host.objects.get(name="node2"))
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.ENSURE_INSTANCE, "node2")
    new_vf = VirtualFunction.objects.get(attachment__instance=instance)
    assert new_vf.pf.host.name == "node2"
    failed = {**_ok_result(instance, "node2"), "ok": False, "error": "no carrier"}
    migration.target_applied("node2", failed, kwargs["spec"]["context"])
    instance.refresh_from_db()
    assert instance.host.name == "node1" and instance.state == InstanceState.RUNNING
    assert "no carrier" in instance.error
    assert VirtualFunction.objects.get(attachment__instance=instance).pk == old_vf.pk
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.RELEASE_INSTANCE, "node2")  # the target's VF is reset
    results.instance_released("node2", {"ok": True}, kwargs["spec"]["context"])
    assert VirtualFunction.objects.get(pk=new_vf.pk).state == VfState.FREE


def test_successful_migration_releases_the_source(cloud, sent, django_capture_on_commit_callbacks):
    instance = _launch(cloud)
    results.apply_instance_result(_ok_result(instance, "node1"))
    old_vf = VirtualFunction.objects.get(attachment__instance=instance)
    with django_capture_on_commit_callbacks(execute=True):
        migrate_instance(Instance.objects.get(pk=instance.pk), Host.objects.get(name="node2"))
    context = sent()[-1][2]["spec"]["context"]
    migration.target_applied("node2", _ok_result(instance, "node2"), context)
    instance.refresh_from_db()
    assert instance.host.name == "node2" and instance.state == InstanceState.RUNNING
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.RELEASE_INSTANCE, "node1")
    assert [a["vf"]["id"] for a in kwargs["spec"]["attachments"]] == [str(old_vf.pk)]
    assert VirtualFunction.objects.get(pk=old_vf.pk).state == VfState.RELEASING
    results.instance_released("node1", {"ok": True}, kwargs["spec"]["context"])
    assert VirtualFunction.objects.get(pk=old_vf.pk).state == VfState.FREE


def test_agent_tasks_route_to_their_node_queue():
    assert names.route_task(names.ENSURE_INSTANCE, (), {"node": "node7"}, {}) == {
        "queue": "node.node7"
    }
    assert names.route_task(names.LEASE_EVENT, (), {"node": "node7"}, {}) == {"queue": "controller"}
    with pytest.raises(ValueError):
        names.route_task(names.ENSURE_INSTANCE, (), {}, {})


def test_reconcile_keeps_a_migrating_instance_source_vf(cloud, django_capture_on_commit_callbacks):
    instance = _launch(cloud)
    results.apply_instance_result(_ok_result(instance, "node1"))
    old_vf = VirtualFunction.objects.get(attachment__instance=instance)
    owner = str(old_vf.attachment.pk)
    with django_capture_on_commit_callbacks(execute=True):
        migrate_instance(Instance.objects.get(pk=instance.pk), Host.objects.get(name="node2"))
    plan = reconcile_plan(old_vf.pf.host_id, {f"{old_vf.pf.name}/{old_vf.index}": owner})
    assert plan["release"] == []  # the target has not reported yet: no break before make
