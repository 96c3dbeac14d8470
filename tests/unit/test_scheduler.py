"""Placement semantics (ciaoweb.instances.scheduler) and the host load counters it orders
by (ciaoweb.inventory.load)."""

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from ciaoweb.core.exceptions import InvalidInput, NoCapacity
from ciaoweb.instances.models import Instance
from ciaoweb.instances.scheduler import (
    candidate_hosts,
    check_host,
    choose_host,
    place,
)
from ciaoweb.instances.services import (
    NetworkRequest,
    create_instance,
    finalize_instance_deletion,
    retarget_attachments,
)
from ciaoweb.inventory import load
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.services import create_network
from ciaoweb.operations.choices import OperationKind, OperationState
from ciaoweb.operations.models import Operation
from ciaoweb.orchestration.workflows import migrate
from ciaoweb.tenancy.services import create_tenant
from tests.api.helpers import inventory
from tests.lockrace import meet

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks (set DATABASE_URL)"
)


def host(name: str, physnets: dict[str, int], network_node: bool = False) -> Host:
    return register_inventory(name, {**inventory(name, physnets), "is_network_node": network_node})


def names(hosts) -> list[str]:
    return [h.name for h in hosts]


@pytest.fixture
def tenant(db):
    return create_tenant("acme")


def sriov(tenant, physnet: str, cidr: str, name: str | None = None):
    return create_network(
        tenant=tenant,
        name=name or physnet,
        kind="sriov",
        physnet=physnet,
        cidr=cidr,
        ipam="controller",
    )


def launch(tenant, name: str, networks, on: Host | None = None) -> Instance:
    return create_instance(
        tenant=tenant,
        name=name,
        kind="container",
        networks=[NetworkRequest(network=n) for n in networks],
        host=on,
    )


def vf_hosts(instance: Instance) -> set[str]:
    return set(
        VirtualFunction.objects.filter(attachment__instance=instance).values_list(
            "pf__host__name", flat=True
        )
    )


# --- ordering and filtering --------------------------------------------------------


def test_least_loaded_first_ties_by_name(tenant):
    for name in ("node-b", "node-c", "node-a"):
        host(name, {"physnet1": 4})
    net = sriov(tenant, "physnet1", "10.1.0.0/24")
    placed = [launch(tenant, f"i{n}", [net]).host.name for n in range(5)]
    assert placed == ["node-a", "node-b", "node-c", "node-a", "node-b"]
    assert dict(Host.objects.values_list("name", "load")) == {
        "node-a": 2,
        "node-b": 2,
        "node-c": 1,
    }


def test_network_nodes_only_when_no_compute_host_fits(tenant):
    host("compute", {"physnet1": 1})
    host("netnode", {"physnet1": 4, "physnet2": 1}, network_node=True)
    one = sriov(tenant, "physnet1", "10.1.0.0/24")
    two = sriov(tenant, "physnet2", "10.2.0.0/24")
    # the network node is emptier, but compute hosts come first
    assert launch(tenant, "first", [one]).host.name == "compute"
    assert launch(tenant, "second", [one]).host.name == "netnode"  # compute is full
    assert launch(tenant, "third", [two]).host.name == "netnode"  # only it has physnet2


def test_physnet_filtering_and_offline_hosts(tenant):
    host("node-a", {"physnet1": 2})
    host("node-b", {"physnet2": 2})
    host("node-c", {"physnet2": 2})
    Host.objects.filter(name="node-b").update(state="maintenance")
    assert names(candidate_hosts(Counter({"physnet2": 1}))) == ["node-c"]
    assert names(candidate_hosts(Counter({"physnet1": 1}))) == ["node-a"]
    assert names(candidate_hosts(Counter({"physnet3": 1}))) == []
    assert names(candidate_hosts(Counter())) == ["node-a", "node-c"]


def test_all_vfs_of_a_multi_vf_need_come_from_one_host(tenant):
    host("node-a", {"physnet1": 1, "physnet2": 2})  # first by name, one physnet1 VF short
    host("node-b", {"physnet1": 3, "physnet2": 1})
    host("node-c", {"physnet1": 2, "physnet2": 1})
    needs = Counter({"physnet1": 2, "physnet2": 1})
    assert names(candidate_hosts(needs)) == ["node-b", "node-c"]
    with transaction.atomic():
        placement = place(needs)
    assert placement.host.name == "node-b"
    claimed = [vf for vfs in placement.vfs.values() for vf in vfs]
    assert {vf.pf.host.name for vf in claimed} == {"node-b"}
    assert sorted((vf.pf.physnet, vf.index) for vf in claimed) == [
        ("physnet1", 0),
        ("physnet1", 1),
        ("physnet2", 0),
    ]
    assert set(
        VirtualFunction.objects.filter(pk__in=[vf.pk for vf in claimed]).values_list(
            "state", flat=True
        )
    ) == {"reserved"}
    # node-b has one physnet1 VF left: the same needs now only fit node-c
    assert names(candidate_hosts(needs)) == ["node-c"]


def test_two_networks_on_one_physnet_need_two_vfs_of_one_host(tenant):
    host("node-a", {"physnet1": 1})
    host("node-b", {"physnet1": 2})
    first = sriov(tenant, "physnet1", "10.1.0.0/24", name="first")
    second = sriov(tenant, "physnet1", "10.2.0.0/24", name="second")
    instance = launch(tenant, "both", [first, second])
    assert instance.host.name == "node-b" and vf_hosts(instance) == {"node-b"}


def test_exclude_and_choose_host(tenant):
    a = host("node-a", {"physnet1": 1})
    b = host("node-b", {"physnet1": 1})
    needs = Counter({"physnet1": 1})
    assert choose_host(needs).name == "node-a"
    assert choose_host(needs, exclude=[a.pk]).name == "node-b"
    assert names(candidate_hosts(needs, exclude=[a.pk, b.pk])) == []
    with pytest.raises(NoCapacity):
        choose_host(needs, exclude=[a.pk, b.pk])
    assert VirtualFunction.objects.filter(state="free").count() == 2  # nothing claimed


def test_no_capacity_message(tenant):
    host("node-a", {"physnet1": 1})
    with pytest.raises(NoCapacity) as caught, transaction.atomic():
        place(Counter({"physnet1": 2, "physnet2": 1}))
    assert str(caught.value.detail) == (
        "no capacity: no online host has 2 free VF(s) on physnet physnet1, "
        "1 free VF(s) on physnet physnet2"
    )
    assert VirtualFunction.objects.get().state == "free"


def test_explicit_host_errors_are_400_on_host(tenant):
    a = host("node-a", {"physnet1": 1})
    with pytest.raises(InvalidInput) as caught:
        place(Counter({"physnet1": 2}), host=a)
    assert caught.value.detail == {
        "host": ["host node-a has 1 free VF(s) on physnet physnet1, needs 2"]
    }
    assert VirtualFunction.objects.get().state == "free"  # the partial claim rolled back
    with pytest.raises(InvalidInput) as caught:
        check_host(a, Counter({"physnet2": 1}))
    assert caught.value.detail == {
        "host": ["host node-a has 0 free VF(s) on physnet physnet2, needs 1"]
    }
    Host.objects.filter(pk=a.pk).update(state="offline")
    a.refresh_from_db()
    with pytest.raises(InvalidInput) as caught:
        place(Counter({"physnet1": 1}), host=a)
    assert caught.value.detail == {"host": ["host node-a is offline, not online"]}


def test_a_failed_claim_leaves_the_load_alone(tenant):
    a = host("node-a", {"physnet1": 1})
    with pytest.raises(InvalidInput), transaction.atomic():
        place(Counter({"physnet1": 2}), host=a, new_instance=True)
    assert Host.objects.get(pk=a.pk).load == 0
    with transaction.atomic():
        place(Counter({"physnet1": 1}), host=a, new_instance=True)
    assert Host.objects.get(pk=a.pk).load == 1


def test_place_issues_the_same_queries_for_1_or_40_hosts(tenant):
    host("node-000", {"physnet1": 3})
    needs = Counter({"physnet1": 2})

    def statements() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            place(needs, new_instance=True)
        return [q["sql"].split()[0] for q in queries.captured_queries]

    small = statements()
    for n in range(1, 40):
        host(f"node-{n:03}", {"physnet1": 3, "physnet2": 2})
    big = statements()
    # candidate, savepoint, load +1, VFs FOR UPDATE (both at once), one UPDATE, release
    assert small == big
    assert big == ["SELECT", "SAVEPOINT", "UPDATE", "SELECT", "UPDATE", "RELEASE"]


# --- concurrency: SKIP LOCKED claims, retries, counters -----------------------------


@contextlib.contextmanager
def held_elsewhere(take_locks) -> Iterator[None]:
    """`take_locks()` runs in another thread's transaction, which keeps its row locks
    until the block ends and then rolls back."""
    held, done = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                take_locks()
                held.set()
                done.wait(30)
                transaction.set_rollback(True)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        yield
    finally:
        done.set()
        holder.join()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_host_whose_vfs_others_hold_is_skipped():
    """Another transaction holds node-a's only free VF: the committed data says node-a
    fits, its claim comes up short, placement moves on to node-b; an explicit node-a is
    a 400 that says so."""
    host("node-a", {"physnet1": 1})
    host("node-b", {"physnet1": 1})
    vfs = VirtualFunction.objects.select_for_update(of=("self",))
    with held_elsewhere(lambda: list(vfs.filter(pf__host__name="node-a"))):
        needs = Counter({"physnet1": 1})
        with transaction.atomic():
            assert place(needs).host.name == "node-b"
            transaction.set_rollback(True)
        with pytest.raises(InvalidInput) as caught, transaction.atomic():
            place(needs, host=Host.objects.get(name="node-a"))
        assert caught.value.detail == {
            "host": ["host node-a has no free VF left on physnet physnet1"]
        }


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_host_another_creation_is_placing_on_is_skipped_not_waited_for():
    """A concurrent creation holds node-a's row (its load update, until it commits): a new
    instance goes to node-b at once instead of waiting for that row."""
    host("node-a", {"physnet1": 2})
    host("node-b", {"physnet1": 2})
    with held_elsewhere(lambda: load.arrive(Host.objects.get(name="node-a"))):
        needs = Counter({"physnet1": 1})
        with transaction.atomic():
            assert place(needs, new_instance=True).host.name == "node-b"
            transaction.set_rollback(True)
        with transaction.atomic():  # no load update: the committed order, node-a first
            assert place(needs).host.name == "node-a"
            transaction.set_rollback(True)
    assert _loads() == {"node-a": 0, "node-b": 0}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_counters_match_the_instances_after_concurrent_creates_moves_and_deletes():
    """Tenants do not share network locks, so their creations race for the same hosts'
    rows and VFs; then deletions, migrations and rolled-back migrations race too. Every VF
    is taken once, nothing deadlocks, and every host's counter equals its COUNT of
    instances."""
    hosts = [host(f"node{n}", {"physnet1": 6}) for n in range(4)]
    tenants = [create_tenant(f"t{n}") for n in range(4)]
    networks = [sriov(t, "physnet1", f"10.{n}.0.0/24") for n, t in enumerate(tenants)]

    def create(number: int):
        try:
            tenant, network = tenants[number % 4], networks[number % 4]
            try:
                return launch(tenant, f"i{number}", [network]).pk
            except NoCapacity:
                return None
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(create, range(28)))
    made = [pk for pk in created if pk]
    assert len(made) == 24 and not VirtualFunction.objects.filter(state="free").exists()
    assert load.drift() == {}
    assert sorted(Host.objects.values_list("load", flat=True)) == [6, 6, 6, 6]

    def delete_or_move(number: int):
        try:
            instance_id = made[number]
            if number % 3 == 0:
                assert finalize_instance_deletion(instance_id)
            else:  # a migration; every other one fails on its target and rolls back
                instance = Instance.objects.get(pk=instance_id)
                source = instance.host
                target = hosts[(hosts.index(source) + 1) % 4]
                try:
                    moved = retarget_attachments(instance_id, target.pk)
                except InvalidInput:  # the target is full: a 400 on host
                    return
                if number % 3 == 2:
                    roll_back(instance_id, moved, source.name)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(delete_or_move, range(len(made))))
    assert load.drift() == {}
    assert sum(Host.objects.values_list("load", flat=True)) == Instance.objects.count() == 16
    owned = VirtualFunction.objects.filter(attachment__isnull=False).values_list("pk", flat=True)
    assert len(owned) == len(set(owned)) == 16


@transaction.atomic
def roll_back(instance_id, moved: dict, source: str, reason: str = "no carrier"):
    """A migration's target failed: the workflow's rollback, on a migration row that
    records these moved VFs (the instance row locked first, as the engine does)."""
    instance = Instance.objects.select_for_update(of=("self",)).select_related("host")
    instance = instance.get(pk=instance_id)
    Operation.objects.filter(instance=instance, state__in=OperationState.ACTIVE).update(
        state=OperationState.SUCCEEDED
    )
    operation = Operation.objects.create(
        kind=OperationKind.MIGRATE,
        state=OperationState.RUNNING,
        instance=instance,
        source_host=Host.objects.get(name=source),
        target_host=instance.host,
        vfs={str(a): [str(old), str(new)] for a, (old, new) in moved.items()},
    )
    return migrate.roll_back(operation, instance, reason)


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["retarget", "rollback"])
def test_a_migration_step_and_a_deletion_in_one_tenant_do_not_deadlock(path):
    """The migration step holds both hosts' counters until it commits, and its commit
    checks its twice-written attachment's foreign keys (deferred), KEY SHARE on the
    network. A deletion in the same tenant locks that network, then waits for a host
    counter the step holds. Only because `lock_networks` takes FOR NO KEY UPDATE, which
    KEY SHARE does not wait for, does the step commit; with FOR UPDATE each would wait
    for the other (see ciaoweb.inventory.load, lock order)."""
    host("node1", {"physnet1": 2})
    host("node2", {"physnet1": 2})
    tenant = create_tenant("acme")
    net = sriov(tenant, "physnet1", "10.1.0.0/24")
    mover = launch(tenant, "mover", [net], on=Host.objects.get(name="node1"))
    if path == "retarget":
        victim = launch(tenant, "victim", [net], on=Host.objects.get(name="node2"))

        def step():
            retarget_attachments(mover.pk, Host.objects.get(name="node2").pk)

    else:
        moved = retarget_attachments(mover.pk, Host.objects.get(name="node2").pk)
        victim = launch(tenant, "victim", [net], on=Host.objects.get(name="node1"))

        def step():
            roll_back(mover.pk, moved, "node1", "x")

    def delete():
        assert finalize_instance_deletion(victim.pk)

    errors = meet(step, delete)  # the step commits only after the deletion waits
    assert errors == []
    assert load.drift() == {}
    expected = "node2" if path == "retarget" else "node1"
    assert Instance.objects.get(pk=mover.pk).host.name == expected
    assert not Instance.objects.filter(pk=victim.pk).exists()


# --- the counters along every path that moves an instance ------------------------------


def _loads() -> dict[str, int]:
    return dict(Host.objects.values_list("name", "load"))


def test_counters_follow_create_migrate_rollback_and_delete(tenant):
    host("node1", {"physnet1": 2})
    host("node2", {"physnet1": 2})
    net = sriov(tenant, "physnet1", "10.1.0.0/24")
    web = launch(tenant, "web", [net])
    db = launch(tenant, "db", [net])
    overlay_only = launch(tenant, "plain", [])  # no VF, still an instance on a host
    assert _loads() == {"node1": 2, "node2": 1} and load.drift() == {}

    # a migration's retarget moves the instance: source -1, target +1
    source = web.host.name
    target = Host.objects.exclude(name=source).get()
    moved = retarget_attachments(web.pk, target.pk)
    assert load.drift() == {} and Instance.objects.get(pk=web.pk).host == target
    # the target fails: back to the source
    roll_back(web.pk, moved, source)
    assert Instance.objects.get(pk=web.pk).host.name == source
    assert load.drift() == {}

    # the target keeps db's VF and web's rolled-back one (releasing): a retarget there
    # cannot claim, and changes nothing
    assert not VirtualFunction.objects.filter(pf__host=target, state="free").exists()
    before = _loads()
    with pytest.raises(InvalidInput):
        retarget_attachments(web.pk, target.pk)
    assert _loads() == before and load.drift() == {}

    for instance in (web, db, overlay_only):
        assert finalize_instance_deletion(instance.pk)
    assert _loads() == {"node1": 0, "node2": 0}


def test_saves_and_inventory_syncs_never_write_the_counter(tenant):
    node = host("node1", {"physnet1": 2})
    stale = Host.objects.get(pk=node.pk)  # read before the instance arrives
    launch(tenant, "web", [sriov(tenant, "physnet1", "10.1.0.0/24")])
    stale.mgmt_address = "10.250.0.1"
    stale.save()  # a full save of a Host read earlier
    register_inventory("node1", inventory("node1", {"physnet1": 3}))
    node.refresh_from_db()
    assert (node.load, node.mgmt_address) == (1, "10.250.0.1")
    assert load.drift() == {}


def test_drift_and_recount(tenant):
    host("node1", {"physnet1": 2})
    host("node2", {"physnet1": 2})
    launch(tenant, "web", [sriov(tenant, "physnet1", "10.1.0.0/24")])
    Host.objects.filter(name="node2").update(load=5)  # changed around the services
    assert load.drift() == {"node2": (5, 0)}
    assert load.recount() == 1
    assert load.drift() == {} and _loads() == {"node1": 1, "node2": 0}
    assert load.recount() == 0


# --- PF capabilities (`requires`) --------------------------------------------------------

LINK = {"physnet1": {"link_state"}}


def set_capabilities(host_: Host, capabilities: dict) -> None:
    host_.pfs.update(capabilities=capabilities)


@pytest.mark.django_db
def test_placement_skips_pfs_that_lack_a_required_knob():
    lacking = host("node1", {"physnet1": 2})
    unknown = host("node2", {"physnet1": 2})
    capable = host("node3", {"physnet1": 2})
    set_capabilities(lacking, {"link_state": False})
    set_capabilities(capable, {"link_state": True, "min_tx_rate": False})
    needs = Counter(physnet1=1)
    # node1 first without requirements (least loaded, by name); never with them
    assert names(candidate_hosts(needs)) == ["node1", "node2", "node3"]
    assert names(candidate_hosts(needs, requires=LINK)) == ["node2", "node3"]
    assert choose_host(needs, requires=LINK).name == "node2"
    with transaction.atomic():
        placement = place(needs, requires=LINK)
        assert placement.host.name == "node2"
    with pytest.raises(InvalidInput, match="host node1 has 0 free VF.* supporting link_state"):
        check_host(lacking, needs, requires=LINK)
    with pytest.raises(InvalidInput, match="physnet physnet1 on a PF supporting link_state"):
        place(needs, host=lacking, requires=LINK)
    check_host(lacking, needs)  # without the requirement it fits
    set_capabilities(unknown, {"link_state": False})
    set_capabilities(capable, {"link_state": False})
    with pytest.raises(NoCapacity, match="on physnet physnet1 on a PF supporting link_state"):
        place(needs, requires=LINK)
    with pytest.raises(NoCapacity, match="supporting link_state"):
        choose_host(needs, requires=LINK)


@pytest.mark.django_db
def test_a_host_claims_only_from_its_capable_pf():
    report = inventory("node1", {"physnet1": 2})
    second = {**report["pfs"][0], "name": "ens9", "pci_address": "0000:09:00.0"}
    second["vfs"] = [{**vf, "pci_address": f"0000:09:00.{vf['index'] + 1}"} for vf in second["vfs"]]
    report["pfs"][0]["capabilities"] = {"link_state": False}  # igb, ens0
    second["capabilities"] = {"link_state": True}
    report["pfs"].append(second)
    node = register_inventory("node1", report)
    with pytest.raises(InvalidInput, match="has 2 free VF.* supporting link_state, needs 3"):
        check_host(node, Counter(physnet1=3), requires=LINK)
    check_host(node, Counter(physnet1=3))  # 4 VFs without the requirement
    with transaction.atomic():
        placement = place(Counter(physnet1=2), host=node, requires=LINK)
    assert {vf.pf.name for vf in placement.vfs["physnet1"]} == {"ens9"}
