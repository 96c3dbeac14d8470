"""`operations/` (DESIGN §3a): read-only, filtered, scoped to the tenant like everything
else; an instance's representation carries its latest operation; `operation.updated`
websocket messages go to the operation's tenant.

The orchestration engine does not run here (`CIAO_DISPATCH = "record"`): operations stay
pending unless a test moves them on by updating the rows."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from ciaoweb.events.services import represent
from ciaoweb.instances.models import Instance
from ciaoweb.instances.services import finalize_instance_deletion
from ciaoweb.operations.choices import OperationKind, OperationState, Step
from ciaoweb.operations.models import Operation
from tests.api.helpers import url
from tests.api.resource_cases import ResourceCase
from tests.api.test_resources import make_instance
from tests.worlds import provisioned

REPRESENTATION = {
    "id",
    "kind",
    "state",
    "instance",
    "host",
    "source_host",
    "target_host",
    "error",
    "created",
    "updated",
}
SUMMARY = {"id", "kind", "state", "step", "error", "created", "updated"}


def operation_of(instance: Instance, kind: str = OperationKind.CREATE) -> Operation:
    return Operation.objects.filter(instance=instance, kind=kind).latest("created")


running = provisioned


def ids(answer) -> set[str]:
    assert answer.status_code == 200, answer.data
    return {row["id"] for row in answer.data["results"]}


class TestOperations(ResourceCase):
    path = "operations"
    actions = ("list", "get")

    def make(self, world, tenant):
        return operation_of(make_instance(world, tenant))


def test_representation(world):
    instance = make_instance(world, world.tenant_a)
    operation = operation_of(instance)
    data = world.alice.get(url("operations", operation)).json()
    assert set(data) >= REPRESENTATION
    assert (data["kind"], data["state"], data["instance"]) == (
        "create",
        "pending",
        str(instance.pk),
    )
    assert data["instance_name"] == instance.name
    assert data["host"] == str(instance.host_id) and data["host_name"] == instance.host.name
    assert data["target_host"] == str(instance.host_id)
    assert data["source_host"] is None and data["error"] == "" and data["finished"] is None
    assert data["tenant"] == str(world.tenant_a.pk)


def test_list_is_paginated_newest_first(world):
    first = operation_of(make_instance(world, world.tenant_a))
    second = operation_of(make_instance(world, world.tenant_a))
    answer = world.alice.get(url("operations"))
    assert set(answer.data) == {"count", "next", "previous", "results"}
    order = [row["id"] for row in answer.data["results"]]
    assert order.index(str(second.pk)) < order.index(str(first.pk))


def test_operations_cannot_be_written(world):
    operation = operation_of(make_instance(world, world.tenant_a))
    assert world.admin.post(url("operations"), {"kind": "create"}, format="json").status_code == 405
    assert world.admin.put(url("operations", operation), {}, format="json").status_code == 405
    assert world.admin.delete(url("operations", operation)).status_code == 405


def test_filters(world):
    node1, node2 = world.hosts
    first = make_instance(world, world.tenant_a)
    other = make_instance(world, world.tenant_a)
    moved = running(make_instance(world, world.tenant_a))
    target = node2 if moved.host_id == node1.pk else node1
    answer = world.alice.post(url("instances", moved, "migrate"), {}, format="json")
    assert answer.status_code == 202, answer.data
    migration = operation_of(moved, OperationKind.MIGRATE)
    assert (migration.source_host_id, migration.target_host_id) == (moved.host_id, target.pk)

    get = world.alice.get
    assert ids(get(url("operations"), {"instance": first.pk})) == {str(operation_of(first).pk)}
    assert ids(get(url("operations"), {"kind": "migrate"})) == {str(migration.pk)}
    assert str(migration.pk) in ids(get(url("operations"), {"state": "pending"}))
    assert str(migration.pk) not in ids(get(url("operations"), {"state": "succeeded"}))
    assert ids(get(url("operations"), {"state": "succeeded"})) == {str(operation_of(moved).pk)}
    # host: the operation's host, its source or its target; by id or by name
    for value in (target.pk, target.name):
        found = ids(get(url("operations"), {"host": value}))
        assert str(migration.pk) in found
        created_on_target = [i for i in (first, other) if i.host_id == target.pk]
        assert {str(operation_of(i).pk) for i in created_on_target} <= found
        assert all(
            str(operation_of(i).pk) not in found
            for i in (first, other, moved)
            if i.host_id != target.pk
        )
    assert ids(get(url("operations"), {"host": "no-such-host"})) == set()
    for bad in ({"kind": "reboot"}, {"state": "done"}, {"instance": "not-a-uuid"}):
        assert get(url("operations"), bad).status_code == 400


def test_host_operations_are_admin_only(world):
    host = world.hosts[0]
    assert world.admin.post(url("hosts", host, "evacuate")).status_code == 200
    assert world.admin.post(url("hosts", host, "restore")).status_code == 200
    evacuation = Operation.objects.get(kind=OperationKind.EVACUATE, host=host)
    restore = Operation.objects.get(kind=OperationKind.RESTORE, host=host)
    assert evacuation.tenant_id is None and restore.state == OperationState.SUCCEEDED
    for operation in (evacuation, restore):
        assert world.alice.get(url("operations", operation)).status_code == 404
        assert world.admin.get(url("operations", operation)).status_code == 200
    assert not ids(world.alice.get(url("operations"), {"host": host.pk})) & {
        str(evacuation.pk),
        str(restore.pk),
    }
    assert ids(world.admin.get(url("operations"), {"host": host.name})) >= {
        str(evacuation.pk),
        str(restore.pk),
    }
    assert ids(world.admin.get(url("operations"), {"kind": "evacuate"})) == {str(evacuation.pk)}


def test_delete_operation_outlives_its_instance(world):
    instance = running(make_instance(world, world.tenant_a))
    assert world.alice.delete(url("instances", instance)).status_code == 204
    deletion = operation_of(instance, OperationKind.DELETE)
    assert finalize_instance_deletion(instance.pk)
    data = world.alice.get(url("operations", deletion)).json()
    assert data["instance"] is None and data["instance_name"] == instance.name
    assert world.bob.get(url("operations", deletion)).status_code == 404


# -- the instance representation's `operation` -------------------------------------------


def test_created_instance_carries_its_pending_create(world):
    payload = {"name": "web", "kind": "container", "networks": [{"network": str(world.net_a.pk)}]}
    answer = world.alice.post(url("instances"), payload, format="json")
    assert answer.status_code == 201, answer.data
    summary = answer.data["operation"]
    assert set(summary) == SUMMARY
    assert (summary["kind"], summary["state"], summary["error"]) == ("create", "pending", "")
    operation = Operation.objects.get(instance_id=answer.data["id"])
    assert summary["id"] == str(operation.pk)
    assert world.alice.get(url("instances", answer.data["id"])).data["operation"] == summary


def test_instance_operation_is_the_latest(world):
    instance = running(make_instance(world, world.tenant_a))
    answer = world.alice.post(url("instances", instance, "migrate"), {}, format="json")
    assert answer.status_code == 202, answer.data
    migration = operation_of(instance, OperationKind.MIGRATE)
    assert answer.data["operation"]["id"] == str(migration.pk)
    Operation.objects.filter(pk=migration.pk).update(
        state=OperationState.FAILED, step=Step.PLUG_TARGET, error="no VF on the target"
    )
    rows = world.alice.get(url("instances")).data["results"]
    summary = next(row for row in rows if row["id"] == str(instance.pk))["operation"]
    assert (summary["kind"], summary["state"], summary["step"], summary["error"]) == (
        "migrate",
        "failed",
        "plug-target",
        "no VF on the target",
    )


def test_instance_without_operations_has_null_operation(world):
    instance = make_instance(world, world.tenant_a)
    Operation.objects.filter(instance=instance).delete()
    assert world.alice.get(url("instances", instance)).data["operation"] is None


def test_instance_list_query_count_does_not_grow_with_instances(world):
    make_instance(world, world.tenant_a)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert world.alice.get(url("instances")).status_code == 200
        return len(context)

    queries()  # the first request also looks up the user's tenant (then cached on the user)
    few = queries()
    for _ in range(3):
        running(make_instance(world, world.tenant_a))
    assert queries() == few


# -- websocket --------------------------------------------------------------------------


def test_operation_updates_are_pushed_to_the_tenant(world, published):
    instance = make_instance(world, world.tenant_a)
    operation = operation_of(instance)
    pushed = [(t, d) for kind, t, d in published if kind == "operation.updated"]
    assert (world.tenant_a.pk, str(operation.pk)) in [(t, d["id"]) for t, d in pushed]
    data = next(d for t, d in pushed if d["id"] == str(operation.pk))
    assert set(data) >= REPRESENTATION and data["kind"] == "create"


def test_host_operation_updates_go_to_admins_only(world, published):
    world.admin.post(url("hosts", world.hosts[0], "evacuate"))
    evacuation = Operation.objects.get(kind=OperationKind.EVACUATE)
    pushed = [(t, d["id"]) for kind, t, d in published if kind == "operation.updated"]
    assert (None, str(evacuation.pk)) in pushed  # no tenant: the admins' group alone


def test_instance_updates_carry_the_operation(world, published):
    instance = make_instance(world, world.tenant_a)
    messages = [d for kind, t, d in published if kind == "instance.updated"]
    assert messages and all("operation" in d for d in messages)
    # what the websocket sends after commit: the representation with its latest operation
    assert represent(instance)["operation"]["id"] == str(operation_of(instance).pk)
