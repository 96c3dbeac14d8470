"""Hot-plug through the API (issue 17): `POST instances/{id}/attachments/` and
`DELETE attachments/{id}/` answer 202 and open an operation; every refusal (not running,
no VF on the instance's host, quota, another tenant's network or instance, eth0, bad
MAC/IP, the interface bound) is answered with its status and leaves nothing behind."""

from __future__ import annotations

import pytest

from ciaoweb import taskrouting as names
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import NetworkRequest, create_instance
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.networks.models import IPAllocation
from ciaoweb.networks.services import create_network
from ciaoweb.operations.models import Operation
from ciaoweb.tenancy.quotas import set_quota, usage
from tests.api.helpers import url
from tests.worlds import add_instances, end_operations, provisioned


@pytest.fixture
def running(world):
    """`world.inst_a` / `inst_b` running (eth0 + eth1 on their tenant's network), and a
    second network of tenant a on physnet2 (2 VFs per host)."""
    add_instances(world, "web", "db")
    world.inst_a, world.inst_b = provisioned(world.inst_a), provisioned(world.inst_b)
    world.storage = create_network(
        tenant=world.tenant_a,
        name="storage",
        kind="sriov",
        physnet="physnet2",
        vlan=200,
        cidr="10.20.0.0/24",
        ipam="controller",
    )
    return world


def attach(world, instance, client=None, **body):
    return (client or world.alice).post(url("instances", instance, "attachments"), body, "json")


def snapshot() -> dict:
    """What a refused request must not change."""
    return {
        "attachments": sorted(Attachment.objects.values_list("pk", flat=True)),
        "operations": Operation.objects.count(),
        "vfs": sorted(VirtualFunction.objects.values_list("pk", "state", "mac")),
        "ips": IPAllocation.objects.count(),
        "generations": sorted(Instance.objects.values_list("pk", "generation")),
    }


def test_attach_answers_202_with_the_pending_attachment_and_opens_an_operation(
    running, django_capture_on_commit_callbacks, dispatched, published
):
    world = running
    with django_capture_on_commit_callbacks(execute=True):
        answer = attach(world, world.inst_a, network=str(world.storage.pk), ip="10.20.0.9")
    assert answer.status_code == 202, answer.data
    data = answer.data
    assert (data["instance"], data["network"], data["ifname"]) == (
        world.inst_a.pk,
        world.storage.pk,
        "eth2",
    )
    assert (data["state"], data["ip"], data["ip_source"]) == ("pending", "10.20.0.9", "controller")
    vf = VirtualFunction.objects.select_related("pf__host").get(pk=data["vf"])
    assert vf.pf.host_id == world.inst_a.host_id and vf.pf.physnet == "physnet2"
    assert (vf.state, vf.mac, vf.vlan) == (VfState.RESERVED, data["mac"], 200)
    operation = Operation.objects.get(kind="attach")
    assert (operation.state, operation.instance_id, str(operation.attachment_id)) == (
        "pending",
        world.inst_a.pk,
        data["id"],
    )
    assert (names.ADVANCE_OPERATION, (operation.pk,)) in dispatched
    types = {(kind, body.get("id")) for kind, _, body in published}
    assert ("attachment.updated", str(data["id"])) in types
    assert ("instance.updated", str(world.inst_a.pk)) in types
    # the operation names it, members see it
    listed = world.alice.get(url("operations"), {"kind": "attach"}).data["results"]
    assert [str(o["attachment"]) for o in listed] == [data["id"]]


def test_a_shared_network_and_a_requested_mac(running):
    world = running
    answer = attach(world, world.inst_a, network=str(world.shared.pk), mac="02:AA:00:00:00:01")
    assert answer.status_code == 202, answer.data
    assert answer.data["mac"] == "02:aa:00:00:00:01"


def test_attach_needs_a_running_instance(running):
    world = running
    pending = create_instance(
        tenant=world.tenant_a,
        name="new",
        kind="container",
        networks=[NetworkRequest(network=world.net_a)],
    )
    before = snapshot()
    answer = attach(world, pending, network=str(world.storage.pk))
    assert answer.status_code == 409, answer.data
    assert "is pending" in answer.data["detail"] and "running" in answer.data["detail"]
    assert snapshot() == before


def test_no_free_vf_on_the_instances_host_is_a_409_with_the_host_and_physnet(running):
    world = running
    host = world.inst_a.host
    VirtualFunction.objects.filter(pf__host=host, pf__physnet="physnet2").update(
        state=VfState.IN_USE
    )
    before = snapshot()
    answer = attach(world, world.inst_a, network=str(world.storage.pk))
    assert answer.status_code == 409, answer.data
    assert answer.data["detail"].startswith(
        f"no capacity: host {host.name} has no free VF left on physnet physnet2"
    )
    assert snapshot() == before  # the other host's free VFs are no help: nothing taken


def test_over_the_vfs_quota_is_a_409_naming_it(running):
    world = running
    set_quota(world.tenant_a, {"vfs": usage(world.tenant_a)["vfs"]})
    before = snapshot()
    answer = attach(world, world.inst_a, network=str(world.storage.pk))
    assert answer.status_code == 409, answer.data
    assert answer.data["detail"] == "quota exceeded: vfs limit 1, in use 1 (tenant tenant-a)"
    assert snapshot() == before


def test_another_tenants_network_or_instance_does_not_exist_for_a_member(running):
    world = running
    before = snapshot()
    for instance, network in (
        (world.inst_a, world.net_b),  # tenant b's network
        (world.inst_a, "6d0f8c55-0000-4000-8000-000000000000"),  # no such network
        (world.inst_b, world.storage),  # tenant b's instance
    ):
        answer = attach(world, instance, network=str(getattr(network, "pk", network)))
        assert answer.status_code == 404, answer.data
    assert snapshot() == before


def test_an_admin_cannot_put_a_tenants_instance_on_another_tenants_network(running):
    world = running
    answer = attach(world, world.inst_a, world.admin, network=str(world.net_b.pk))
    assert answer.status_code == 400
    assert "not available to" in answer.data["network"][0]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"network": "primary"}, "network", "not an SR-IOV network"),
        ({"network": "data"}, "network", "already has eth1"),
        ({"network": "storage", "mac": "01:00:5e:00:00:01"}, "mac", ""),
        ({"network": "storage", "mac": "in use"}, "mac", "already in use"),
        ({"network": "storage", "ip": "10.99.0.5"}, "ip", "not inside 10.20.0.0/24"),
        ({"network": "storage", "ip": "10.20.0.1"}, "ip", "gateway"),
        ({"network": "storage", "ip": "not an ip"}, "ip", ""),
        ({}, "network", "required"),
    ],
)
def test_bad_input_is_a_400_on_the_field(running, body, field, words):
    world = running
    networks = {
        "primary": world.tenant_a.networks.get(is_primary=True),
        "data": world.net_a,
        "storage": world.storage,
    }
    if "network" in body:
        body["network"] = str(networks[body["network"]].pk)
    if body.get("mac") == "in use":
        body["mac"] = world.inst_b.attachments.get(ifname="eth1").mac
    before = snapshot()
    answer = attach(world, world.inst_a, **body)
    assert answer.status_code == 400, answer.data
    assert field in answer.data and words in " ".join(map(str, answer.data[field]))
    assert snapshot() == before


def test_an_ip_only_on_a_controller_network(running):
    world = running
    dynamic = create_network(
        tenant=world.tenant_a, name="dyn", kind="sriov", physnet="physnet2", ipam="dynamic",
        cidr="10.21.0.0/24",
    )  # fmt: skip
    answer = attach(world, world.inst_a, network=str(dynamic.pk), ip="10.21.0.5")
    assert answer.status_code == 400
    assert "ipam=controller" in answer.data["ip"][0]


def test_one_operation_at_a_time(running):
    world = running
    assert attach(world, world.inst_a, network=str(world.storage.pk)).status_code == 202
    before = snapshot()
    answer = attach(world, world.inst_a, network=str(world.shared.pk))
    assert answer.status_code == 409 and "in progress: attach" in answer.data["detail"]
    eth1 = world.inst_a.attachments.get(ifname="eth1")
    answer = world.alice.delete(url("attachments", eth1))
    assert answer.status_code == 409 and "in progress: attach" in answer.data["detail"]
    assert snapshot() == before


def test_the_number_of_interfaces_is_bounded(running, monkeypatch):
    monkeypatch.setattr("ciaoweb.instances.hotplug.MAX_NETWORKS", 1)
    world = running
    before = snapshot()
    answer = attach(world, world.inst_a, network=str(world.storage.pk))
    assert answer.status_code == 409
    assert "the most an instance may have (1)" in answer.data["detail"]
    assert snapshot() == before


def test_detach_answers_202_and_opens_a_detach(
    running, django_capture_on_commit_callbacks, dispatched
):
    world = running
    eth1 = world.inst_a.attachments.get(ifname="eth1")
    with django_capture_on_commit_callbacks(execute=True):
        answer = world.alice.delete(url("attachments", eth1))
    assert answer.status_code == 202, answer.data
    assert (answer.data["id"], answer.data["state"]) == (str(eth1.pk), "releasing")
    operation = Operation.objects.get(kind="detach")
    assert (operation.attachment_id, operation.instance_id) == (eth1.pk, world.inst_a.pk)
    assert (names.ADVANCE_OPERATION, (operation.pk,)) in dispatched
    # held until the host confirms the unplug
    assert VirtualFunction.objects.get(pk=eth1.vf_id).state != VfState.FREE


def test_eth0_cannot_be_removed(running):
    world = running
    eth0 = world.inst_a.attachments.get(ifname="eth0")
    before = snapshot()
    for client in (world.alice, world.admin):
        answer = client.delete(url("attachments", eth0))
        assert answer.status_code == 400, answer.data
        assert "primary overlay interface" in answer.data[0]
    assert snapshot() == before


def test_another_tenants_attachment_is_404_and_a_busy_instance_409(running):
    world = running
    eth1_b = world.inst_b.attachments.get(ifname="eth1")
    assert world.alice.delete(url("attachments", eth1_b)).status_code == 404
    pending = create_instance(
        tenant=world.tenant_a,
        name="new",
        kind="container",
        networks=[NetworkRequest(network=world.storage)],
    )
    answer = world.alice.delete(url("attachments", pending.attachments.get(ifname="eth1")))
    assert answer.status_code == 409 and "pending" in answer.data["detail"]
    end_operations(pending.pk)
    assert Attachment.objects.filter(instance=pending, ifname="eth1").exists()
