"""Hot-plug on the controller side, in-process: what an attach and a detach send to
which node and in which order (a controller network's DHCP server gets the reservation
before the host plugs), how reports finish them, how failures and silent hosts leave
nothing behind, and how a deletion takes an attach over.

Node tasks are recorded (settings.CIAO_DISPATCH = "record"); see test_orchestration.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ciaoweb import taskrouting as names
from ciaoweb.core.exceptions import Conflict, NoCapacity
from ciaoweb.instances.choices import AttachmentState, InstanceState
from ciaoweb.instances.hotplug import attach_network, detach_attachment
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import delete_instance, migrate_instance
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.networks.choices import LeaseState
from ciaoweb.networks.models import IPAllocation, Lease
from ciaoweb.networks.services import create_network
from ciaoweb.operations.choices import OperationKind, OperationState, Step
from ciaoweb.operations.models import Operation
from ciaoweb.orchestration import engine, results
from tests.api.helpers import inventory
from tests.orchestration import test_orchestration as base
from tests.orchestration.test_orchestration import _dhcp_reported, _provisioned

# The fixtures of the launch workflow's tests: a tenant, hosts, a controller network
# with its DHCP server (`cloud`), and the node tasks recorded (`sent`).
cloud, sent = base.cloud, base.sent


@pytest.fixture
def second(cloud, django_capture_on_commit_callbacks, worker):
    """A second controller network of the tenant (its DHCP server on the network node)."""
    tenant, _ = cloud
    with django_capture_on_commit_callbacks(execute=True):
        network = create_network(
            tenant=tenant,
            name="storage",
            kind="sriov",
            physnet="physnet1",
            vlan=102,
            cidr="192.168.20.0/24",
            ipam="controller",
        )
    worker()
    return network


def _operation(kind: str) -> Operation:
    return Operation.objects.filter(kind=kind).latest("created")


def _tasks(sent, task: str) -> list:
    return [x for x in sent() if x[0] == task]


def _report(attachment: Attachment, instance: Instance, ok=True, error="", ip=None) -> dict:
    instance.refresh_from_db()
    return {
        "instance_id": str(instance.pk),
        "generation": instance.generation,
        "host": "node1",
        "ok": ok,
        "netns": instance.netns,
        "error": error,
        "attachments": [
            {"attachment_id": str(attachment.pk), "state": "up", "ip": ip, "error": ""}
        ],
    }


def _attached(cloud, run, sent, network):
    """A running instance, and an attach to `network` taken up to its `plug` step."""
    instance = _provisioned(cloud, run, sent)
    attachment = run(attach_network, Instance.objects.get(pk=instance.pk), network)
    operation = _operation(OperationKind.ATTACH)
    assert (operation.step, operation.waiting) == (Step.DHCP, [str(network.pk)])
    _, node, kwargs = _tasks(sent, names.ENSURE_DHCP_SERVER)[-1]
    _dhcp_reported(run, node, str(network.pk), kwargs["spec"]["context"])
    return instance, attachment


def test_attach_reserves_on_the_dhcp_server_before_the_host_plugs_only_the_new_vf(
    cloud, second, run, sent
):
    instance = _provisioned(cloud, run, sent)
    generation = Instance.objects.get(pk=instance.pk).generation
    plugs_before = len(_tasks(sent, names.ENSURE_INSTANCE))
    attachment = run(attach_network, Instance.objects.get(pk=instance.pk), second)
    assert (attachment.ifname, attachment.state) == ("eth2", AttachmentState.PENDING)
    assert attachment.vf.pf.host.name == "node1" and attachment.vf.state == VfState.RESERVED
    assert attachment.ip == "192.168.20.2"  # .1 is the gateway
    operation = _operation(OperationKind.ATTACH)
    assert (operation.instance_id, operation.attachment_id) == (instance.pk, attachment.pk)
    assert (operation.state, operation.step) == (OperationState.RUNNING, Step.DHCP)
    # No plug before the network's server has the reservation.
    assert len(_tasks(sent, names.ENSURE_INSTANCE)) == plugs_before
    _, node, kwargs = _tasks(sent, names.ENSURE_DHCP_SERVER)[-1]
    assert node == "netnode" and kwargs["spec"]["network_id"] == str(second.pk)
    assert {"mac": attachment.mac, "ip": attachment.ip, "hostname": "web"} in kwargs["spec"][
        "reservations"
    ]
    _dhcp_reported(run, node, str(second.pk), kwargs["spec"]["context"])

    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.ENSURE_INSTANCE, "node1")
    spec = kwargs["spec"]
    assert spec["generation"] == generation + 1  # older specs are stale for the agent
    assert [a["attachment_id"] for a in spec["attachments"]] == [str(attachment.pk)]
    assert spec["attachments"][0]["vf"]["id"] == str(attachment.vf_id)
    assert spec["context"] == {
        "purpose": "attach",
        "operation_id": str(operation.pk),
        "step": Step.PLUG,
    }
    run(results.instance_applied, "node1", _report(attachment, instance), spec["context"])
    attachment.refresh_from_db()
    assert attachment.state == AttachmentState.ACTIVE
    assert VirtualFunction.objects.get(pk=attachment.vf_id).state == VfState.IN_USE
    assert _operation(OperationKind.ATTACH).state == OperationState.SUCCEEDED
    instance.refresh_from_db()
    assert (instance.state, instance.error) == (InstanceState.RUNNING, "")


def test_attach_to_a_network_without_a_managed_server_plugs_at_once(cloud, run, sent):
    tenant, _ = cloud
    underlay = create_network(
        tenant=tenant,
        name="edge",
        kind="sriov",
        physnet="physnet1",
        vlan=300,
        cidr="10.30.0.0/24",
        ipam="underlay",
    )
    instance = _provisioned(cloud, run, sent)
    attachment = run(attach_network, Instance.objects.get(pk=instance.pk), underlay)
    assert attachment.ip is None
    assert _operation(OperationKind.ATTACH).step == Step.PLUG
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.ENSURE_INSTANCE, "node1")
    run(
        results.instance_applied,
        "node1",
        _report(attachment, instance, ip="10.30.0.77"),
        kwargs["spec"]["context"],
    )
    attachment.refresh_from_db()
    assert (attachment.state, attachment.ip, attachment.ip_source) == (
        AttachmentState.ACTIVE,
        "10.30.0.77",
        "underlay",
    )


def test_a_failed_attach_is_unplugged_and_leaves_nothing_behind(cloud, second, run, sent):
    instance, attachment = _attached(cloud, run, sent, second)
    vf_id = attachment.vf_id
    context = sent()[-1][2]["spec"]["context"]
    failed = _report(attachment, instance, ok=False, error="eth2: MAC set failed")
    run(results.instance_applied, "node1", failed, context)
    operation = _operation(OperationKind.ATTACH)
    assert operation.step == Step.ROLLBACK and "MAC set failed" in operation.error
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.UNPLUG_INTERFACES, "node1")
    assert [a["attachment_id"] for a in kwargs["spec"]["attachments"]] == [str(attachment.pk)]
    run(results.instance_released, "node1", {"ok": True}, kwargs["spec"]["context"])

    assert not Attachment.objects.filter(pk=attachment.pk).exists()
    assert VirtualFunction.objects.get(pk=vf_id).state == VfState.FREE
    assert not IPAllocation.objects.filter(network=second, purpose="attachment").exists()
    operation.refresh_from_db()
    assert operation.state == OperationState.FAILED and "MAC set failed" in operation.error
    instance.refresh_from_db()
    assert instance.state == InstanceState.RUNNING  # its other interfaces are untouched
    # the server drops the reservation
    refresh = _tasks(sent, names.ENSURE_DHCP_SERVER)[-1][2]["spec"]
    assert refresh["network_id"] == str(second.pk) and refresh["reservations"] == []


def test_a_rollback_the_host_could_not_do_keeps_the_vf_held(cloud, second, run, sent):
    instance, attachment = _attached(cloud, run, sent, second)
    failed = _report(attachment, instance, ok=False, error="eth2: no carrier")
    run(results.instance_applied, "node1", failed, sent()[-1][2]["spec"]["context"])
    context = sent()[-1][2]["spec"]["context"]
    run(results.instance_released, "node1", {"ok": False, "error": "EBUSY"}, context)
    operation = _operation(OperationKind.ATTACH)
    assert (operation.state, operation.step) == (OperationState.RUNNING, Step.ROLLBACK)
    assert VirtualFunction.objects.get(pk=attachment.vf_id).state != VfState.FREE


def test_a_dhcp_failure_on_the_new_interface_rolls_it_back(cloud, second, run, sent):
    instance, attachment = _attached(cloud, run, sent, second)
    context = sent()[-1][2]["spec"]["context"]
    report = _report(attachment, instance)
    report["attachments"][0].update(state="error", error="DHCP on eth2 failed: no lease")
    run(results.instance_applied, "node1", report, context)
    assert _operation(OperationKind.ATTACH).step == Step.ROLLBACK
    assert sent()[-1][:2] == (names.UNPLUG_INTERFACES, "node1")


def test_a_stale_or_foreign_report_does_not_finish_an_attach(cloud, second, run, sent):
    instance, attachment = _attached(cloud, run, sent, second)
    context = sent()[-1][2]["spec"]["context"]
    stale = _report(attachment, instance)
    stale["generation"] -= 1
    run(results.instance_applied, "node1", stale, context)
    run(results.instance_applied, "node2", _report(attachment, instance), context)
    assert _operation(OperationKind.ATTACH).state == OperationState.RUNNING
    assert Attachment.objects.get(pk=attachment.pk).state == AttachmentState.PENDING


def test_a_silent_host_ends_the_attach_with_its_vf_reserved_until_it_returns(
    cloud, second, run, sent, settings
):
    settings.CIAO_OPERATION_ATTEMPTS = 2
    instance, attachment = _attached(cloud, run, sent, second)
    vf_id = attachment.vf_id
    plugs = len(_tasks(sent, names.ENSURE_INSTANCE))
    for _ in range(2):
        Operation.objects.filter(kind=OperationKind.ATTACH).update(
            deadline=timezone.now() - timedelta(seconds=1)
        )
        run(engine.watchdog)
    assert len(_tasks(sent, names.ENSURE_INSTANCE)) == plugs + 1  # sent again once
    operation = _operation(OperationKind.ATTACH)
    assert operation.state == OperationState.FAILED and "no progress" in operation.error
    assert not Attachment.objects.filter(pk=attachment.pk).exists()
    assert VirtualFunction.objects.get(pk=vf_id).state == VfState.RELEASING  # never reused
    run(results.inventory_registered, "node1", inventory("node1", {"physnet1": 2}), {})
    assert VirtualFunction.objects.get(pk=vf_id).state == VfState.FREE


def test_detach_unplugs_then_frees_the_vf_the_address_and_the_reservation(cloud, second, run, sent):
    instance, attachment = _attached(cloud, run, sent, second)
    context = sent()[-1][2]["spec"]["context"]
    run(results.instance_applied, "node1", _report(attachment, instance), context)
    Lease.objects.create(
        network=second, mac=attachment.mac, ip=attachment.ip, state=LeaseState.ACTIVE
    )
    vf_id = attachment.vf_id

    detached = run(detach_attachment, Attachment.objects.get(pk=attachment.pk))
    assert detached.state == AttachmentState.RELEASING
    operation = _operation(OperationKind.DETACH)
    assert (operation.step, operation.waiting) == (Step.RELEASE, ["node1"])
    task, node, kwargs = sent()[-1]
    assert (task, node) == (names.UNPLUG_INTERFACES, "node1")
    assert [a["attachment_id"] for a in kwargs["spec"]["attachments"]] == [str(attachment.pk)]
    assert kwargs["spec"]["attachments"][0]["vf"]["id"] == str(vf_id)
    assert VirtualFunction.objects.get(pk=vf_id).state == VfState.IN_USE  # until confirmed

    run(results.instance_released, "node1", {"ok": True}, kwargs["spec"]["context"])
    assert not Attachment.objects.filter(pk=attachment.pk).exists()
    vf = VirtualFunction.objects.get(pk=vf_id)
    assert (vf.state, vf.mac, vf.vlan) == (VfState.FREE, "", None)
    assert not IPAllocation.objects.filter(network=second, purpose="attachment").exists()
    assert Lease.objects.get(network=second, mac=attachment.mac).state == LeaseState.RELEASED
    refresh = _tasks(sent, names.ENSURE_DHCP_SERVER)[-1][2]["spec"]
    assert refresh["network_id"] == str(second.pk) and refresh["reservations"] == []
    operation.refresh_from_db()
    assert operation.state == OperationState.SUCCEEDED and operation.attachment_id is None
    instance.refresh_from_db()
    assert instance.state == InstanceState.RUNNING
    assert list(instance.attachments.values_list("ifname", flat=True)) == ["eth0", "eth1"]


def test_a_failed_unplug_is_sent_again_and_the_vf_stays_held(cloud, run, sent):
    instance = _provisioned(cloud, run, sent)
    eth1 = instance.attachments.get(ifname="eth1")
    run(detach_attachment, eth1)
    context = sent()[-1][2]["spec"]["context"]
    run(results.instance_released, "node1", {"ok": False, "error": "EBUSY"}, context)
    operation = _operation(OperationKind.DETACH)
    assert operation.state == OperationState.RUNNING and "EBUSY" in operation.error
    assert VirtualFunction.objects.get(pk=eth1.vf_id).state == VfState.IN_USE


def test_one_operation_at_a_time_on_an_instance(cloud, second, run, sent):
    instance, attachment = _attached(cloud, run, sent, second)
    with pytest.raises(Conflict, match="in progress: attach"):
        detach_attachment(instance.attachments.get(ifname="eth1"))
    with pytest.raises(Conflict, match="in progress: attach"):
        migrate_instance(Instance.objects.get(pk=instance.pk), Host.objects.get(name="node2"))


def test_no_free_vf_on_the_instances_host_is_a_409_and_claims_nothing(cloud, second, run, sent):
    instance = _provisioned(cloud, run, sent)
    node1 = VirtualFunction.objects.filter(pf__host__name="node1")
    node1.filter(state=VfState.FREE).update(state=VfState.IN_USE)  # node2 still has VFs
    before = list(VirtualFunction.objects.order_by("pk").values_list("pk", "state"))
    with pytest.raises(NoCapacity, match="host node1 has no free VF left on physnet physnet1"):
        attach_network(Instance.objects.get(pk=instance.pk), second)
    assert list(VirtualFunction.objects.order_by("pk").values_list("pk", "state")) == before
    assert not Operation.objects.filter(kind=OperationKind.ATTACH).exists()
    assert Instance.objects.get(pk=instance.pk).attachments.count() == 2


def test_a_deletion_takes_an_attach_over_and_releases_its_vf(cloud, second, run, sent):
    instance, attachment = _attached(cloud, run, sent, second)
    vf_id = attachment.vf_id
    run(delete_instance, Instance.objects.get(pk=instance.pk))
    attach = _operation(OperationKind.ATTACH)
    assert attach.state == OperationState.FAILED and "superseded" in attach.error
    _, node, kwargs = _tasks(sent, names.RELEASE_INSTANCE)[-1]
    assert str(attachment.pk) in [a["attachment_id"] for a in kwargs["spec"]["attachments"]]
    run(results.instance_released, node, {"ok": True}, kwargs["spec"]["context"])
    assert not Instance.objects.filter(pk=instance.pk).exists()
    assert VirtualFunction.objects.get(pk=vf_id).state == VfState.FREE
