"""A container launch whose DHCP servers all run on network nodes with nothing queued:
its plug goes out with the refreshes instead of a hop after their reports
(`provision.start`), and a DHCP failure before a server confirmed falls back to waiting
for it. Otherwise (a server not running yet, a busy or older network node, a VM) the
launch waits in `dhcp` as `test_launch_plugs_only_after_its_dhcp_server_reports_the_
reservation` shows."""

from __future__ import annotations

import pytest

from ciaoweb import taskrouting as names
from ciaoweb.instances.choices import InstanceState
from ciaoweb.instances.models import Instance
from ciaoweb.operations.choices import OperationState, Step
from ciaoweb.orchestration import engine, results, sender
from ciaoweb.orchestration.choices import DhcpServerState
from ciaoweb.orchestration.models import DhcpServer
from tests.orchestration import test_orchestration as base
from tests.orchestration.test_orchestration import (
    _dhcp_ok,
    _dhcp_reported,
    _expire,
    _launch,
    _ok_result,
    _op,
    _provisioned,
)

cloud, sent = base.cloud, base.sent


@pytest.fixture
def queues(monkeypatch):
    """Each node's queue idle unless a test says otherwise (no broker here)."""
    idle: dict[str, bool] = {}
    monkeypatch.setattr(sender, "queue_is_idle", lambda node: idle.get(node, True))
    return idle


@pytest.fixture
def running_server(cloud, run, sent, queues):
    """The network's server reported running (the first launch waited for it)."""
    _provisioned(cloud, run, sent, name="first")
    assert DhcpServer.objects.get(network=cloud[1]).state == DhcpServerState.RUNNING
    return cloud[1]


def _sent_since(sent, mark: int) -> list[tuple[str, str, dict]]:
    return sent()[mark:]


def _launch_beside(cloud, run, sent, kind="container", host="node1"):
    mark = len(sent())
    instance = run(_launch, cloud, name="web", kind=kind, host=host)
    return instance, _sent_since(sent, mark)


def _dhcp_failed(instance, node: str) -> dict:
    result = _ok_result(instance, node)
    eth1 = next(a for a in result["attachments"] if a["attachment_id"] == str(_eth1(instance).pk))
    eth1.update(state="error", error="DHCP on eth1 failed: udhcpc: no lease")
    return result


def _ended(instance, operation: str, state: str) -> None:
    """The launch's operation and the instance ended so."""
    assert (_op(instance).state, Instance.objects.get(pk=instance.pk).state) == (operation, state)


def _eth1(instance):
    return instance.attachments.get(ifname="eth1")


def test_the_plug_goes_out_with_the_refresh_and_the_lease_ends_the_launch(
    cloud, run, sent, running_server
):
    instance, new = _launch_beside(cloud, run, sent)
    assert [task for task, _, _ in new] == [names.ENSURE_DHCP_SERVER, names.ENSURE_INSTANCE]
    (_, _, refresh), (_, node, plug) = new
    operation = _op(instance)
    assert operation.step == Step.PLUG
    assert sorted(operation.waiting) == sorted(["node1", str(running_server.pk)])
    answers = {"operation_id": str(operation.pk), "step": Step.PLUG}  # both, this step
    assert refresh["spec"]["context"] == answers
    assert {k: plug["spec"]["context"][k] for k in answers} == answers
    assert "partial" in refresh["spec"]
    assert {r["mac"] for r in refresh["spec"]["reservations"]} == {_eth1(instance).mac}
    # The host reports the lease before the server confirmed: the lease proves it landed.
    run(results.instance_applied, node, _ok_result(instance, node), plug["spec"]["context"])
    _ended(instance, OperationState.SUCCEEDED, InstanceState.RUNNING)
    _dhcp_reported(run, "netnode", str(running_server.pk), refresh["spec"]["context"])
    assert _op(instance).state == OperationState.SUCCEEDED  # a late confirmation: nothing


def test_a_dhcp_failure_before_the_server_confirmed_waits_for_it_then_plugs_again(
    cloud, run, sent, running_server
):
    instance, new = _launch_beside(cloud, run, sent)
    _, node, plug = new[1]
    run(results.instance_applied, node, _dhcp_failed(instance, node), plug["spec"]["context"])
    operation = _op(instance)
    assert (operation.state, operation.step) == (OperationState.RUNNING, Step.DHCP)
    assert operation.waiting == [str(running_server.pk)]
    assert Instance.objects.get(pk=instance.pk).state == InstanceState.PROVISIONING
    context = _dhcp_ok(run, sent, running_server)  # the refresh again, for step dhcp
    assert context["step"] == Step.DHCP
    _, node, again = base._last(sent, names.ENSURE_INSTANCE)
    assert again["spec"]["context"]["step"] == Step.PLUG and again is not plug
    run(results.instance_applied, node, _ok_result(instance, node), again["spec"]["context"])
    _ended(instance, OperationState.SUCCEEDED, InstanceState.RUNNING)


def test_a_dhcp_failure_after_the_server_confirmed_fails_the_launch_as_before(
    cloud, run, sent, running_server
):
    instance, new = _launch_beside(cloud, run, sent)
    (_, _, refresh), (_, node, plug) = new
    _dhcp_reported(run, "netnode", str(running_server.pk), refresh["spec"]["context"])
    assert _op(instance).waiting == ["node1"]
    run(results.instance_applied, node, _dhcp_failed(instance, node), plug["spec"]["context"])
    _ended(instance, OperationState.FAILED, InstanceState.ERROR)


def test_the_watchdog_sends_an_unconfirmed_refresh_again_with_the_plug(
    cloud, run, sent, running_server
):
    instance, _ = _launch_beside(cloud, run, sent)
    mark = len(sent())
    _expire(_op(instance))
    assert run(engine.watchdog) == 1
    again = _sent_since(sent, mark)
    assert [task for task, _, _ in again] == [names.ENSURE_DHCP_SERVER, names.ENSURE_INSTANCE]
    assert again[0][2]["spec"]["context"]["step"] == Step.PLUG


def test_a_busy_network_node_gets_the_refresh_first(cloud, run, sent, running_server, queues):
    queues["netnode"] = False
    instance, new = _launch_beside(cloud, run, sent)
    assert [task for task, _, _ in new] == [names.ENSURE_DHCP_SERVER]
    assert _op(instance).step == Step.DHCP


def test_a_vm_waits_for_its_servers_even_when_they_run(cloud, run, sent, running_server):
    """Its guest asks on its own: nothing would notice a reservation that never landed."""
    first = run(_launch, cloud, name="vm1", kind="vm", host="node2")
    operation = _op(first)
    assert len(operation.waiting) == 2  # the SR-IOV network's server and the overlay's
    for network_id in operation.waiting:
        context = {"operation_id": str(operation.pk), "step": Step.DHCP}
        _dhcp_reported(run, "netnode", network_id, context)
    assert {s.state for s in DhcpServer.objects.all()} == {DhcpServerState.RUNNING}
    instance, new = _launch_beside(cloud, run, sent, kind="vm", host="node2")
    assert names.ENSURE_INSTANCE not in [task for task, _, _ in new]
    assert _op(instance).step == Step.DHCP


def test_an_instance_being_deleted_does_not_go_back_to_wait_for_its_server(
    cloud, run, sent, running_server
):
    instance, new = _launch_beside(cloud, run, sent)
    _, node, plug = new[1]
    Instance.objects.filter(pk=instance.pk).update(state=InstanceState.DELETING)
    run(results.instance_applied, node, _dhcp_failed(instance, node), plug["spec"]["context"])
    assert _op(instance).step != Step.DHCP
