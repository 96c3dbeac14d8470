"""The controller side of every workflow, in-process: what each operation step sends to
which node, how agent reports advance it (only the step it waits for), and how the
watchdog re-sends or ends a step that made no progress.

Node tasks are recorded (settings.CIAO_DISPATCH = "record"), not sent to a broker, and
the "advance this operation" requests are run by hand (`advance`).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ciaoweb import taskrouting as names
from ciaoweb.core.exceptions import Conflict
from ciaoweb.instances.choices import InstanceState, IpSource
from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import (
    NetworkRequest,
    create_instance,
    delete_instance,
    migrate_instance,
)
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.inventory.services import evacuate_host, register_inventory
from ciaoweb.networks.choices import LeaseState
from ciaoweb.networks.models import Lease
from ciaoweb.networks.services import create_network
from ciaoweb.operations import queue
from ciaoweb.operations.choices import OperationKind, OperationState, Step
from ciaoweb.operations.models import Operation
from ciaoweb.orchestration import engine, reports, results, sender, tasks  # noqa: F401 (tasks)
from ciaoweb.orchestration.choices import DhcpServerState
from ciaoweb.orchestration.dhcp import ensure_server, servers_for_node
from ciaoweb.orchestration.models import DhcpServer, OverlaySegment
from ciaoweb.orchestration.specs import reconcile_plan
from ciaoweb.tenancy.services import create_tenant
from tests.api.helpers import inventory


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
def cloud(db, django_capture_on_commit_callbacks, worker):
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
    worker()  # network_changed: its DHCP server is placed on the network node
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


def _op(instance, kind=OperationKind.CREATE) -> Operation:
    return Operation.objects.filter(instance_id=instance.pk, kind=kind).latest("created")


def _last(sent, task):
    return next((t, n, k) for t, n, k in reversed(sent()) if t == task)


def _dhcp_reported(run, node: str, network_id: str, context: dict) -> None:
    """`node` reports that the network's server is up, for the operation step `context`."""
    run(
        results.dhcp_server_applied, node, network_id, ok=True, error="", netns="n", context=context
    )


def _dhcp_ok(run, sent, network):
    _, node, kwargs = next(
        x
        for x in reversed(sent())
        if x[0] == names.ENSURE_DHCP_SERVER and x[2]["spec"]["network_id"] == str(network.pk)
    )
    context = kwargs["spec"]["context"]
    _dhcp_reported(run, node, str(network.pk), context)
    return context


def _provisioned(cloud, run, sent, **launch):
    """Launched, its DHCP server ready, plugged: running with a succeeded create."""
    instance = run(_launch, cloud, **launch)
    _dhcp_ok(run, sent, cloud[1])
    _, node, kwargs = _last(sent, names.ENSURE_INSTANCE)
    run(results.instance_applied, node, _ok_result(instance, node), kwargs["spec"]["context"])
    instance.refresh_from_db()
    assert instance.state == InstanceState.RUNNING, instance.error
    return instance


def test_network_gets_a_dhcp_server_on_the_network_node(cloud, sent):
    _, network = cloud
    server = DhcpServer.objects.get(network=network)
    assert server.host.name == "netnode"
    assert server.vf.state == VfState.IN_USE  # never handed to an instance
    ensure_server(network.pk)
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.ENSURE_DHCP_SERVER, "netnode")
    assert kwargs["spec"]["server_ip"] == "192.168.10.254"


def test_each_dhcp_spec_has_a_newer_revision_than_the_last(cloud, run, sent):
    """The agent applies the reservations of the highest revision it has seen: a spec
    built later (a launch after a reconcile plan) must carry a higher one."""
    _, network = cloud
    server = DhcpServer.objects.get(network=network)
    (plan_spec,) = servers_for_node(server.host)  # what a reconcile sends
    run(_launch, cloud, name="late")
    launch_spec = _last(sent, names.ENSURE_DHCP_SERVER)[2]["spec"]
    assert launch_spec["server_id"] == plan_spec["server_id"] == str(server.pk)
    assert launch_spec["revision"] > plan_spec["revision"]
    assert len(launch_spec["reservations"]) == len(plan_spec["reservations"]) + 1


def _refresh(sent, network) -> dict:
    return next(
        k["spec"]
        for t, _, k in reversed(sent())
        if t == names.ENSURE_DHCP_SERVER and k["spec"]["network_id"] == str(network.pk)
    )


def test_a_running_servers_refreshes_carry_only_the_macs_they_change(cloud, run, sent):
    """Once its server runs, a launch sends its own reservation and a deletion its MAC
    with none: the same few hundred bytes on a network of any size (the full list goes
    on reconcile, and to a server not yet running)."""
    _, network = cloud
    first = _provisioned(cloud, run, sent, name="web")  # its server was not yet running
    assert "partial" not in _refresh(sent, network)
    for n in range(2):
        _provisioned(cloud, run, sent, name=f"more{n}", host="node2")
    launch = _provisioned(cloud, run, sent, name="late")
    mac = launch.attachments.get(network=network).mac
    spec = next(
        k["spec"]
        for t, _, k in sent()
        if t == names.ENSURE_DHCP_SERVER
        and k["spec"].get("context", {}).get("operation_id") == str(_op(launch).pk)
    )
    ip = launch.attachments.get(network=network).ip
    assert spec["partial"] == [mac]
    assert spec["reservations"] == [{"mac": mac, "ip": ip, "hostname": "late"}]
    (plan,) = servers_for_node(DhcpServer.objects.get(network=network).host)
    assert "partial" not in plan and len(plan["reservations"]) == 4

    gone = first.attachments.get(network=network).mac
    run(delete_instance, Instance.objects.get(pk=first.pk))
    _, node, kwargs = _last(sent, names.RELEASE_INSTANCE)
    run(results.instance_released, node, {"ok": True}, kwargs["spec"]["context"])
    removal = _refresh(sent, network)
    assert (removal["partial"], removal["reservations"]) == ([gone], [])
    assert removal["revision"] > spec["revision"]


def test_an_older_network_node_agent_always_gets_the_whole_list(cloud, run, sent):
    """Nodes are upgraded after the controller: an agent that does not list
    `dhcp.partial` would take a partial refresh's one reservation for the whole list and
    drop every other. Until it re-registers as one that does, it gets them all."""
    _, network = cloud
    older = {k: v for k, v in inventory("netnode", {"physnet1": 2}).items() if k != "features"}
    run(results.inventory_registered, "netnode", older | {"mgmt_address": "10.250.0.9"}, {})
    _provisioned(cloud, run, sent, name="web")
    _provisioned(cloud, run, sent, name="second")
    spec = _refresh(sent, network)
    assert "partial" not in spec and len(spec["reservations"]) == 2
    current = inventory("netnode", {"physnet1": 2}) | {"mgmt_address": "10.250.0.9"}
    run(results.inventory_registered, "netnode", current, {})
    _provisioned(cloud, run, sent, name="third", host="node2")
    assert "partial" in _refresh(sent, network)


def test_a_node_without_the_whole_list_gets_it_for_the_step_that_asked(cloud, run, sent):
    """A partial refresh reached a network node that lost its state: it answers
    `needs_full`, and the whole list goes to it tagged with the same step, whose report
    then lets the launch plug. The server is not marked failed meanwhile."""
    _, network = cloud
    _provisioned(cloud, run, sent, name="web")
    instance = run(_launch, cloud, name="second")
    partial = _refresh(sent, network)
    assert "partial" in partial
    run(
        results.dhcp_server_applied,
        "netnode",
        str(network.pk),
        ok=False,
        error="no full list",
        netns="",
        context=partial["context"],
        needs_full=True,
    )
    full = _refresh(sent, network)
    assert "partial" not in full and full["context"] == partial["context"]
    assert {r["hostname"] for r in full["reservations"]} == {"web", "second"}
    assert DhcpServer.objects.get(network=network).state == DhcpServerState.RUNNING
    assert _op(instance).step == Step.DHCP
    _dhcp_reported(run, "netnode", str(network.pk), full["context"])
    assert _op(instance).step == Step.PLUG


def test_create_writes_a_pending_operation_and_sends_no_node_task(cloud):
    sender.recorded.clear()
    queue.recorded.clear()
    instance = _launch(cloud)
    operation = _op(instance)
    assert (operation.state, operation.tenant_id, operation.host.name) == (
        OperationState.PENDING,
        cloud[0].pk,
        "node1",
    )
    assert operation.deadline is not None  # the watchdog advances it if the message is lost
    assert sender.recorded == []  # the API side sends no node task


def test_launch_plugs_only_after_its_dhcp_server_reports_the_reservation(cloud, run, sent):
    instance = run(_launch, cloud)
    operation = _op(instance)
    assert (operation.state, operation.step) == (OperationState.RUNNING, Step.DHCP)
    assert [t for t, _, _ in sent()].count(names.ENSURE_INSTANCE) == 0
    _, node, kwargs = _last(sent, names.ENSURE_DHCP_SERVER)
    assert node == "netnode"
    assert kwargs["spec"]["context"] == {"operation_id": str(operation.pk), "step": Step.DHCP}
    attachment = instance.attachments.get(network=cloud[1])
    assert {"mac": attachment.mac, "ip": attachment.ip, "hostname": "web"} in kwargs["spec"][
        "reservations"
    ]
    assert Instance.objects.get(pk=instance.pk).state == InstanceState.PROVISIONING

    _dhcp_ok(run, sent, cloud[1])
    _, node, kwargs = _last(sent, names.ENSURE_INSTANCE)
    assert node == "node1"
    spec = kwargs["spec"]
    assert spec["context"]["step"] == Step.PLUG
    sriov = [a for a in spec["attachments"] if a["vf"]]
    overlay = [a for a in spec["attachments"] if a["overlay"]]
    assert len(sriov) == 1 and sriov[0]["vlan"] == 100 and sriov[0]["ifname"] == "eth1"
    assert overlay[0]["overlay"]["vni"] == OverlaySegment.objects.get().vni
    assert "10.250.0.1" not in overlay[0]["overlay"]["peers"]  # itself is no peer


def test_a_report_for_another_step_or_operation_changes_nothing(cloud, run, sent):
    instance = run(_launch, cloud)
    operation = _op(instance)
    network_id = str(cloud[1].pk)
    for context in (
        {"operation_id": str(operation.pk), "step": Step.PLUG},
        {"operation_id": "6d0f8c55-0000-4000-8000-000000000000", "step": Step.DHCP},
    ):
        _dhcp_reported(run, "netnode", network_id, context)
    operation.refresh_from_db()
    assert (operation.step, operation.waiting) == (Step.DHCP, [network_id])
    # the right step, reported by a node that does not run the server
    context = {"operation_id": str(operation.pk), "step": Step.DHCP}
    _dhcp_reported(run, "node2", network_id, context)
    operation.refresh_from_db()
    assert operation.step == Step.DHCP
    assert names.ENSURE_INSTANCE not in [t for t, _, _ in sent()]


def test_agent_result_makes_the_instance_running_and_the_operation_succeed(cloud, run, sent):
    instance = _provisioned(cloud, run, sent)
    assert instance.netns == "ciao-i-web"
    assert _op(instance).state == OperationState.SUCCEEDED
    assert set(
        VirtualFunction.objects.filter(attachment__instance=instance).values_list(
            "state", flat=True
        )
    ) == {VfState.IN_USE}


def test_a_report_from_a_node_the_step_does_not_wait_for_is_ignored(cloud, run, sent):
    instance = run(_launch, cloud)
    _dhcp_ok(run, sent, cloud[1])
    context = _last(sent, names.ENSURE_INSTANCE)[2]["spec"]["context"]
    run(results.instance_applied, "node2", _ok_result(instance, "node2"), context)
    instance.refresh_from_db()
    assert instance.state == InstanceState.PROVISIONING
    assert _op(instance).step == Step.PLUG


def test_stale_result_is_ignored(cloud):
    instance = _launch(cloud)
    stale = _ok_result(instance, "node1")
    stale["generation"] -= 1
    assert reports.apply_instance_result(stale) is None
    assert Instance.objects.get(pk=instance.pk).state == InstanceState.PENDING


def test_failed_result_gives_error_and_a_failed_operation_with_the_reason(cloud, run, sent):
    instance = run(_launch, cloud)
    _dhcp_ok(run, sent, cloud[1])
    context = _last(sent, names.ENSURE_INSTANCE)[2]["spec"]["context"]
    failed = {**_ok_result(instance, "node1"), "ok": False, "error": "eth1: MAC set failed"}
    run(results.instance_applied, "node1", failed, context)
    instance.refresh_from_db()
    assert instance.state == InstanceState.ERROR and "MAC set failed" in instance.error
    operation = _op(instance)
    assert operation.state == OperationState.FAILED and "MAC set failed" in operation.error


def test_dhcp_answer_that_contradicts_the_reservation_is_an_error(cloud):
    instance = _launch(cloud)
    reports.apply_instance_result(_ok_result(instance, "node1", {"eth1": "192.168.10.200"}))
    instance.refresh_from_db()
    assert instance.state == InstanceState.ERROR and "reservation" in instance.error


def _expire(operation: Operation) -> None:
    Operation.objects.filter(pk=operation.pk).update(deadline=timezone.now() - timedelta(seconds=1))


def test_watchdog_resends_a_lost_plug_then_fails_with_a_reason(cloud, run, sent, settings):
    settings.CIAO_OPERATION_ATTEMPTS = 3
    instance = run(_launch, cloud)
    _dhcp_ok(run, sent, cloud[1])
    plugs = lambda: [x for x in sent() if x[0] == names.ENSURE_INSTANCE]  # noqa: E731
    assert len(plugs()) == 1
    for attempt in (1, 2):
        _expire(_op(instance))
        assert run(engine.watchdog) == 1
        assert len(plugs()) == 1 + attempt  # the same step, sent again
        assert plugs()[-1][2]["spec"]["generation"] == plugs()[0][2]["spec"]["generation"]
        assert _op(instance).attempts == attempt
    _expire(_op(instance))
    run(engine.watchdog)
    operation, instance = _op(instance), Instance.objects.get(pk=instance.pk)
    assert operation.state == OperationState.FAILED and "node1" in operation.error
    assert instance.state == InstanceState.ERROR and "no progress" in instance.error
    assert run(engine.watchdog) == 0  # ended: nothing more to do


def test_watchdog_waits_for_a_plug_queued_behind_others_on_a_busy_host(cloud, run, sent, settings):
    """node1 (beating) has not finished the first launch's plug: the second's plug waits
    in its queue behind it, so its deadline moves on without a resend or an attempt, for
    up to QUEUE_PATIENCE_STEPS step timeouts; the first is watched as before."""
    settings.CIAO_OPERATION_ATTEMPTS = 3
    first = run(_launch, cloud, name="first")
    _dhcp_ok(run, sent, cloud[1])
    second = run(_launch, cloud, name="second")
    _dhcp_ok(run, sent, cloud[1])
    plugs = lambda: [x for x in sent() if x[0] == names.ENSURE_INSTANCE]  # noqa: E731
    sent_before = len(plugs())
    for _ in range(settings.CIAO_OPERATION_ATTEMPTS + 1):
        _expire(_op(second))
        run(engine.watchdog)
    assert (_op(second).state, _op(second).attempts) == (OperationState.RUNNING, 0)
    assert len(plugs()) == sent_before  # nothing sent again
    _expire(_op(first))
    run(engine.watchdog)
    assert _op(first).attempts == 1 and len(plugs()) == sent_before + 1
    patience = engine.QUEUE_PATIENCE_STEPS * settings.CIAO_OPERATION_STEP_TIMEOUT
    begun = timezone.now() - timedelta(seconds=patience + 1)
    Operation.objects.filter(pk=_op(second).pk).update(created=begun)
    _expire(_op(second))
    run(engine.watchdog)
    assert _op(second).attempts == 1 and len(plugs()) == sent_before + 2


def test_watchdog_advances_an_operation_whose_advance_message_was_lost(cloud, run, sent):
    instance = _launch(cloud)  # committed, but its "advance" never reaches a worker
    queue.recorded.clear()
    operation = _op(instance)
    assert operation.state == OperationState.PENDING
    run(engine.watchdog)
    assert _op(instance).state == OperationState.PENDING  # not due yet
    _expire(operation)
    run(engine.watchdog)
    assert (_op(instance).state, _op(instance).step) == (OperationState.RUNNING, Step.DHCP)


def test_a_reregistered_host_gets_its_current_step_again(cloud, run, sent):
    instance = run(_launch, cloud)
    _dhcp_ok(run, sent, cloud[1])
    before = [x for x in sent() if x[0] == names.ENSURE_INSTANCE]
    run(results.inventory_registered, "node1", inventory("node1", {"physnet1": 2}), {})
    after = [x for x in sent() if x[0] == names.ENSURE_INSTANCE]
    assert len(after) == len(before) + 1 and after[-1][1] == "node1"
    assert _op(instance).attempts == 0  # asked for, not a watchdog attempt


def test_a_minutely_registration_of_an_agent_that_lost_nothing_resends_nothing(cloud, run, sent):
    """Its queue still holds the step: sending it again doubled a busy host's queue each
    minute (a bench burst: 411 plugs for 256 launches). An agent that restarted or lost
    the broker says `resume`, and gets the step again (the test above)."""
    run(_launch, cloud)
    _dhcp_ok(run, sent, cloud[1])
    before = [x for x in sent() if x[0] == names.ENSURE_INSTANCE]
    registration = inventory("node1", {"physnet1": 2})
    run(results.inventory_registered, "node1", registration, {}, None, False)
    assert [x for x in sent() if x[0] == names.ENSURE_INSTANCE] == before
    assert [x for x in sent() if x[0] == names.RECONCILE]  # the plan still goes


def test_a_registrations_time_comes_back_with_its_plan(cloud, run, sent):
    """The agent keeps the DHCP servers it set up after registering (cnci.reconcile):
    the plan carries the time it sent, and nothing else an agent might put there."""
    for registered_at, echoed in ((1234.5, 1234.5), ("1234.5", None), (True, None)):
        registration = inventory("node1", {"physnet1": 2})
        run(results.inventory_registered, "node1", registration, {}, registered_at)
        (*_, plan) = [x for x in sent() if x[0] == names.RECONCILE]
        assert plan[2]["desired"].get("registered_at") == echoed


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


def _dynamic_vm(tenant, name: str):
    """A VM on a dynamic-IPAM network of its own: the instance and its VF attachment."""
    network = create_network(
        tenant=tenant,
        name=f"dyn-{name}",
        kind="sriov",
        physnet="physnet1",
        vlan=101,
        cidr="10.9.0.0/24",
        ipam="dynamic",
    )
    instance = create_instance(
        tenant=tenant, name=name, kind="vm", networks=[NetworkRequest(network=network)]
    )
    return instance, instance.attachments.get(network=network)


def _leased(attachment, ip: str, action: str = "add") -> None:
    """dnsmasq's lease hook reporting `ip` for the attachment's MAC."""
    results.apply_lease_event(
        {
            "network_id": str(attachment.network_id),
            "action": action,
            "mac": attachment.mac,
            "ip": ip,
            "hostname": attachment.instance.name,
            "expires": 2_000_000_000,
        }
    )


def test_dynamic_lease_event_sets_the_attachment_ip(cloud):
    _, attachment = _dynamic_vm(cloud[0], "dyn1")
    _leased(attachment, "10.9.0.200")
    attachment.refresh_from_db()
    assert (attachment.ip, attachment.ip_source) == ("10.9.0.200", IpSource.DHCP)
    _leased(attachment, "10.9.0.200", action="del")
    assert Lease.objects.get(mac=attachment.mac).state == LeaseState.RELEASED


def test_a_vm_guests_early_lease_is_not_erased_by_its_hosts_later_report(cloud, monkeypatch):
    """A VM's guest may lease its dynamic IP before its host reports the plug: the lease
    event commits after the report has read the attachment rows and before it writes
    them. The report knows no IP (the guest's DHCP is its own) and must leave it."""
    instance, attachment = _dynamic_vm(cloud[0], "fast1")
    report = _ok_result(instance, instance.host.name)  # no IP: a VM's host says none
    real = reports._apply_attachment

    def lease_lands_meanwhile(row, reported, kind):
        if row.pk == attachment.pk:  # read already, as the report read it: no IP yet
            assert row.ip is None
            _leased(attachment, "10.9.0.77")
        real(row, reported, kind)

    monkeypatch.setattr(reports, "_apply_attachment", lease_lands_meanwhile)
    assert reports.apply_instance_result(report).state == InstanceState.RUNNING
    attachment.refresh_from_db()
    assert (attachment.ip, attachment.ip_source) == ("10.9.0.77", IpSource.DHCP)


def _migrate(run, sent, instance, target="node2"):
    run(migrate_instance, Instance.objects.get(pk=instance.pk), Host.objects.get(name=target))
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.ENSURE_INSTANCE, target)
    assert kwargs["spec"]["context"]["step"] == Step.PLUG_TARGET
    return kwargs["spec"]["context"]


def test_failed_migration_rolls_back_to_the_source(cloud, run, sent):
    instance = _provisioned(cloud, run, sent)
    old_vf = VirtualFunction.objects.get(attachment__instance=instance)
    context = _migrate(run, sent, instance)
    new_vf = VirtualFunction.objects.get(attachment__instance=instance)
    assert new_vf.pf.host.name == "node2"
    failed = {**_ok_result(instance, "node2"), "ok": False, "error": "no carrier"}
    run(results.instance_applied, "node2", failed, context)
    instance.refresh_from_db()
    assert instance.host.name == "node1" and instance.state == InstanceState.RUNNING
    assert "no carrier" in instance.error
    assert VirtualFunction.objects.get(attachment__instance=instance).pk == old_vf.pk
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.RELEASE_INSTANCE, "node2")  # the target's VF is reset
    assert _op(instance, OperationKind.MIGRATE).step == Step.ROLLBACK
    run(results.instance_released, "node2", {"ok": True}, kwargs["spec"]["context"])
    assert VirtualFunction.objects.get(pk=new_vf.pk).state == VfState.FREE
    operation = _op(instance, OperationKind.MIGRATE)
    assert operation.state == OperationState.FAILED and "no carrier" in operation.error


def test_successful_migration_releases_the_source(cloud, run, sent):
    instance = _provisioned(cloud, run, sent)
    old_vf = VirtualFunction.objects.get(attachment__instance=instance)
    context = _migrate(run, sent, instance)
    run(results.instance_applied, "node2", _ok_result(instance, "node2"), context)
    instance.refresh_from_db()
    assert instance.host.name == "node2" and instance.state == InstanceState.RUNNING
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.RELEASE_INSTANCE, "node1")
    assert [a["vf"]["id"] for a in kwargs["spec"]["attachments"]] == [str(old_vf.pk)]
    assert VirtualFunction.objects.get(pk=old_vf.pk).state == VfState.RELEASING
    operation = _op(instance, OperationKind.MIGRATE)
    assert operation.vfs == {
        str(instance.attachments.get(network=cloud[1]).pk): [
            str(old_vf.pk),
            str(VirtualFunction.objects.get(attachment__instance=instance).pk),
        ]
    }
    run(results.instance_released, "node1", {"ok": True}, kwargs["spec"]["context"])
    assert VirtualFunction.objects.get(pk=old_vf.pk).state == VfState.FREE
    assert _op(instance, OperationKind.MIGRATE).state == OperationState.SUCCEEDED


def test_a_silent_migration_target_rolls_back_after_the_watchdog(cloud, run, sent, settings):
    settings.CIAO_OPERATION_ATTEMPTS = 1
    instance = _provisioned(cloud, run, sent)
    old_vf = VirtualFunction.objects.get(attachment__instance=instance)
    _migrate(run, sent, instance)
    _expire(_op(instance, OperationKind.MIGRATE))
    run(engine.watchdog)
    instance.refresh_from_db()
    assert (instance.host.name, instance.state) == ("node1", InstanceState.RUNNING)
    assert VirtualFunction.objects.get(attachment__instance=instance).pk == old_vf.pk
    operation = _op(instance, OperationKind.MIGRATE)
    assert operation.state == OperationState.FAILED and "did not answer" in operation.error
    assert sent()[-1][:2] == (names.RELEASE_INSTANCE, "node2")


def test_migrate_refused_while_another_operation_runs(cloud, run, sent):
    instance = _provisioned(cloud, run, sent)
    _migrate(run, sent, instance)
    run(
        results.instance_applied,
        "node2",
        _ok_result(instance, "node2"),
        sent()[-1][2]["spec"]["context"],
    )
    # running on node2 now, but the source release is still under way
    with pytest.raises(Conflict, match="in progress"):
        migrate_instance(Instance.objects.get(pk=instance.pk), Host.objects.get(name="node1"))


def test_delete_releases_then_removes_the_rows(cloud, run, sent):
    instance = _provisioned(cloud, run, sent)
    vf = VirtualFunction.objects.get(attachment__instance=instance)
    run(delete_instance, Instance.objects.get(pk=instance.pk))
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.RELEASE_INSTANCE, "node1")
    operation = _op(instance, OperationKind.DELETE)
    assert operation.step == Step.RELEASE
    run(results.instance_released, "node1", {"ok": True}, kwargs["spec"]["context"])
    assert not Instance.objects.filter(pk=instance.pk).exists()
    assert VirtualFunction.objects.get(pk=vf.pk).state == VfState.FREE
    operation.refresh_from_db()
    assert operation.state == OperationState.SUCCEEDED and operation.instance_name == "web"


def test_delete_on_a_dead_host_ends_with_its_vfs_reserved(cloud, run, sent, settings):
    settings.CIAO_OPERATION_ATTEMPTS = 1
    instance = _provisioned(cloud, run, sent)
    vf = VirtualFunction.objects.get(attachment__instance=instance)
    run(delete_instance, Instance.objects.get(pk=instance.pk))
    operation = _op(instance, OperationKind.DELETE)
    _expire(operation)
    run(engine.watchdog)
    assert not Instance.objects.filter(pk=instance.pk).exists()
    assert VirtualFunction.objects.get(pk=vf.pk).state == VfState.RELEASING  # never reused
    operation.refresh_from_db()
    assert operation.state == OperationState.SUCCEEDED and "node1" in operation.error
    # the host comes back without it: the VF is free again
    run(results.inventory_registered, "node1", inventory("node1", {"physnet1": 2}), {})
    assert VirtualFunction.objects.get(pk=vf.pk).state == VfState.FREE


def test_delete_supersedes_a_migration_and_releases_both_hosts(cloud, run, sent):
    instance = _provisioned(cloud, run, sent)
    old_vf = VirtualFunction.objects.get(attachment__instance=instance)
    plug_context = _migrate(run, sent, instance)
    new_vf = VirtualFunction.objects.get(attachment__instance=instance)
    run(delete_instance, Instance.objects.get(pk=instance.pk))
    migration = _op(instance, OperationKind.MIGRATE)
    assert migration.state == OperationState.FAILED and "superseded" in migration.error
    # the migration's late target report changes nothing
    run(results.instance_applied, "node2", _ok_result(instance, "node2"), plug_context)
    releases = {n: k for t, n, k in sent() if t == names.RELEASE_INSTANCE}
    assert set(releases) == {"node1", "node2"}
    for node, kwargs in releases.items():
        run(results.instance_released, node, {"ok": True}, kwargs["spec"]["context"])
    assert not Instance.objects.filter(pk=instance.pk).exists()
    assert set(
        VirtualFunction.objects.filter(pk__in=[old_vf.pk, new_vf.pk]).values_list(
            "state", flat=True
        )
    ) == {VfState.FREE}
    deleted = Operation.objects.get(kind=OperationKind.DELETE, instance_name="web")
    assert deleted.state == OperationState.SUCCEEDED and deleted.instance_id is None


def test_evacuation_is_a_parent_of_migrations_and_ends_when_they_do(cloud, run, sent):
    first = _provisioned(cloud, run, sent, name="web")
    second = _provisioned(cloud, run, sent, name="db")
    run(evacuate_host, Host.objects.get(name="node1"))
    parent = Operation.objects.get(kind=OperationKind.EVACUATE)
    children = list(parent.children.all())
    assert {c.instance_id for c in children} == {first.pk, second.pk}
    assert (parent.state, parent.step) == (OperationState.RUNNING, Step.CHILDREN)
    for child in children:
        plug = next(
            k["spec"]["context"]
            for t, _, k in sent()
            if t == names.ENSURE_INSTANCE
            and k["spec"]["context"].get("operation_id") == str(child.pk)
        )
        instance = Instance.objects.get(pk=child.instance_id)
        run(results.instance_applied, "node2", _ok_result(instance, "node2"), plug)
        release = _last(sent, names.RELEASE_INSTANCE)[2]["spec"]["context"]
        run(results.instance_released, "node1", {"ok": True}, release)
    parent.refresh_from_db()
    assert parent.state == OperationState.SUCCEEDED, parent.error
    assert set(Instance.objects.values_list("host__name", flat=True)) == {"node2"}


def test_agent_tasks_route_to_their_node_queue():
    assert names.route_task(names.ENSURE_INSTANCE, (), {"node": "node7"}, {}) == {
        "queue": "node.node7"
    }
    assert names.route_task(names.LEASE_EVENT, (), {"node": "node7"}, {}) == {"queue": "controller"}
    with pytest.raises(ValueError):
        names.route_task(names.ENSURE_INSTANCE, (), {}, {})


def test_reconcile_keeps_a_migrating_instance_source_vf(cloud, run, sent):
    instance = _provisioned(cloud, run, sent)
    old_vf = VirtualFunction.objects.get(attachment__instance=instance)
    owner = str(old_vf.attachment.pk)
    _migrate(run, sent, instance)
    plan = reconcile_plan(old_vf.pf.host_id, {f"{old_vf.pf.name}/{old_vf.index}": owner})
    assert plan["release"] == []  # the target has not reported yet: no break before make


def test_an_operation_whose_workflow_breaks_fails_without_stalling_the_others(
    cloud, run, sent, monkeypatch
):
    broken = run(_launch, cloud, name="broken")
    healthy = _launch(cloud, name="healthy")  # its advance was lost: the watchdog starts it
    queue.recorded.clear()
    _expire(_op(broken))
    _expire(_op(healthy))
    monkeypatch.setattr(
        "ciaoweb.orchestration.workflows.provision.resend",
        lambda *args: (_ for _ in ()).throw(RuntimeError("disk on fire")),
    )
    run(engine.watchdog)
    failed, instance = _op(broken), Instance.objects.get(pk=broken.pk)
    assert failed.state == OperationState.FAILED and "disk on fire" in failed.error
    assert instance.state == InstanceState.ERROR and "internal error" in instance.error
    assert _op(healthy).state == OperationState.RUNNING  # handled in the same pass
