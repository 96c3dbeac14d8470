from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ciaoweb.events.models import Event
from ciaoweb.instances.services import create_instance
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction
from ciaoweb.inventory.services import enrol_host, heartbeat, note_liveness, register_inventory
from ciaoweb.tenancy.services import create_tenant
from tests.api.helpers import inventory


@pytest.mark.django_db
def test_register_inventory_is_idempotent():
    report = inventory("node1", {"physnet1": 3, "physnet2": 1})
    first = register_inventory("node1", report)
    second = register_inventory("node1", report)
    assert first.pk == second.pk
    assert PhysicalFunction.objects.count() == 2 and VirtualFunction.objects.count() == 4


@pytest.mark.django_db
def test_a_periodic_registration_reads_a_pfs_vfs_at_once():
    """Every agent registers again each reconcile interval with nothing changed: its
    statements do not grow with its VFs (a query per VF was the controller's largest
    task in a burst), and a VF reported with a new MAC is updated alone."""

    def statements(vfs: int) -> int:
        report = inventory(f"node{vfs}", {"physnet1": vfs})
        register_inventory(f"node{vfs}", report)
        with CaptureQueriesContext(connection) as queries:
            register_inventory(f"node{vfs}", report)
        return len(queries)

    assert statements(2) == statements(32)
    report = inventory("node2", {"physnet1": 2})
    report["pfs"][0]["vfs"][1]["mac"] = "02:00:00:00:00:09"
    register_inventory("node2", report)
    macs = dict(VirtualFunction.objects.filter(pf__host__name="node2").values_list("index", "mac"))
    assert macs == {0: "", 1: "02:00:00:00:00:09"}


@pytest.mark.django_db
def test_register_inventory_drops_free_vfs_and_flags_owned_ones():
    register_inventory("node1", inventory("node1", {"physnet1": 3}))
    VirtualFunction.objects.filter(index=2).update(state="reserved")
    register_inventory("node1", inventory("node1", {"physnet1": 1}))
    states = dict(VirtualFunction.objects.values_list("index", "state"))
    assert states == {0: "free", 2: "error"}


@pytest.mark.django_db
def test_a_legacy_heartbeat_task_still_brings_a_host_back(settings):
    """An agent of the previous version beats through the controller.heartbeat task."""
    assert heartbeat("ghost") is False
    host = register_inventory("node1", inventory("node1", {}))
    Host.objects.filter(pk=host.pk).update(state="offline")
    assert heartbeat("node1")
    host.refresh_from_db()
    assert host.state == "online"
    assert Event.objects.filter(kind="host.updated", message__endswith="back online").count() == 1
    seen = host.last_seen
    Host.objects.filter(pk=host.pk).update(state="maintenance")
    assert heartbeat("node1")
    host.refresh_from_db()
    assert (host.state, host.last_seen > seen) == ("maintenance", True)


@pytest.mark.django_db
def test_liveness_follows_the_beats_and_flags_the_instances(settings):
    settings.CIAO_HEARTBEAT_TIMEOUT = 6.0
    for name in ("node1", "node2", "node3"):
        register_inventory(name, inventory(name, {}))
    Host.objects.update(last_seen=timezone.now() - timedelta(seconds=60))  # registered then
    Host.objects.filter(name="node3").update(state="maintenance")
    tenant = create_tenant("acme")
    on_node1 = create_instance(
        tenant=tenant,
        name="web",
        kind="container",
        networks=[],
        host=Host.objects.get(name="node1"),
    )
    # node1 last beat 7 s ago, node2 just now, node3 (maintenance) long ago: node1 only.
    assert note_liveness({"node1": 7.0, "node2": 0.2, "node3": 60.0}) == {
        "offline": ["node1"],
        "online": [],
    }
    states = dict(Host.objects.values_list("name", "state"))
    assert states == {"node1": "offline", "node2": "online", "node3": "maintenance"}
    (flagged,) = Event.objects.filter(object_id=on_node1.pk, data__host_state="offline")
    assert flagged.kind == "instance.updated" and "node1 is offline" in flagged.message
    node1 = Host.objects.get(name="node1")
    assert abs((timezone.now() - node1.last_seen).total_seconds() - 7.0) < 1.0
    # Its key gone (expired): still offline, and last_seen kept.
    assert note_liveness({"node2": 1.0}) == {"offline": [], "online": []}
    assert Host.objects.get(name="node1").last_seen == node1.last_seen
    # It beats again: back, its instance told.
    assert note_liveness({"node1": 0.1, "node2": 1.0}) == {"offline": [], "online": ["node1"]}
    flags = Event.objects.filter(kind="instance.updated", object_id=on_node1.pk)
    assert sorted(e.data["host_state"] for e in flags if "host_state" in e.data) == [
        "offline",
        "online",
    ]


@pytest.mark.django_db
def test_a_host_that_beats_before_it_registered_stays_offline_until_its_inventory():
    """The liveness worker may see an agent's first beats before the controller's worker
    has its inventory: the host must not be online with no VFs known (a launch then got
    "no capacity" on a cluster whose hosts all showed online)."""
    host, _ = enrol_host("node1")
    assert note_liveness({"node1": 0.1}) == {"offline": [], "online": []}
    assert heartbeat("node1")  # an older agent's beat task: the same
    host.refresh_from_db()
    assert (host.state, host.last_seen) == ("offline", None)
    register_inventory("node1", inventory("node1", {"physnet1": 1}))
    host.refresh_from_db()
    assert host.state == "online"
    Host.objects.filter(pk=host.pk).update(state="offline")  # silent once registered
    assert note_liveness({"node1": 0.1}) == {"offline": [], "online": ["node1"]}


@pytest.mark.django_db
def test_an_emptied_redis_judges_nobody_until_the_beats_return(settings):
    """Redis keeps nothing on disk: after a restart no host has a key. Hosts that were
    beating a moment ago are not all declared dead."""
    settings.CIAO_HEARTBEAT_TIMEOUT = 6.0
    for name in ("node1", "node2"):
        register_inventory(name, inventory(name, {}))
    Host.objects.update(last_seen=timezone.now() - timedelta(seconds=30))
    assert note_liveness({}) == {"offline": [], "online": []}
    # One host beats again: the others are judged from their last beat.
    assert note_liveness({"node1": 0.1}) == {"offline": ["node2"], "online": []}


# --- PF capabilities (ciaoweb.inventory.capabilities) ----------------------------------

IGB = {"link_state": False, "min_tx_rate": False, "vlan_8021ad": False}


def with_capabilities(report: dict, capabilities) -> dict:
    for pf in report["pfs"]:
        pf["capabilities"] = capabilities
    return report


def security_events() -> list[Event]:
    return list(Event.objects.filter(kind="security.refused"))


def test_the_controller_knows_the_agents_knobs():
    from ciaoweb.agent.drivers.netlink import OPTIONAL_KNOBS
    from ciaoweb.inventory.capabilities import KNOBS

    assert KNOBS == OPTIONAL_KNOBS


@pytest.mark.django_db
def test_capabilities_are_stored_and_a_report_without_them_keeps_them():
    register_inventory("node1", with_capabilities(inventory("node1", {"physnet1": 2}), IGB))
    pf = PhysicalFunction.objects.get()
    assert pf.capabilities == IGB
    assert pf.unsupported_capabilities == ["link_state", "min_tx_rate", "802.1ad"]
    register_inventory("node1", inventory("node1", {"physnet1": 2}))  # an older agent
    pf.refresh_from_db()
    assert pf.capabilities == IGB
    supported = {"link_state": True, "min_tx_rate": False}
    register_inventory("node1", with_capabilities(inventory("node1", {"physnet1": 2}), supported))
    pf.refresh_from_db()
    assert pf.capabilities == supported and pf.unsupported_capabilities == ["min_tx_rate"]
    assert security_events() == []


@pytest.mark.django_db
def test_unknown_knobs_of_a_newer_agent_are_ignored_quietly():
    caps = {"link_state": False, "xdp_offload": True}
    register_inventory("node1", with_capabilities(inventory("node1", {"physnet1": 1}), caps))
    assert PhysicalFunction.objects.get().capabilities == {"link_state": False}
    assert security_events() == []


@pytest.mark.parametrize(
    ("reported", "stored"),
    [
        ("all of them", {}),
        (["link_state"], {}),
        (None, {}),
        (42, {}),
        ({"link_state": "false"}, {}),
        ({"link_state": 0, "min_tx_rate": False}, {"min_tx_rate": False}),
        ({"link_state": None, "vlan_8021ad": {"deep": [1]}}, {}),
    ],
)
@pytest.mark.django_db
def test_malformed_capabilities_are_cleaned_and_recorded_not_fatal(reported, stored):
    host = register_inventory(
        "node1", with_capabilities(inventory("node1", {"physnet1": 2}), reported)
    )
    pf = PhysicalFunction.objects.get()
    assert pf.capabilities == stored
    assert pf.vfs.count() == 2 and host.state == "online"  # the rest of the report stands
    [event] = security_events()
    assert "node1" in event.message and "capabilities" in event.message
