import pytest

from ciaoweb.events.models import Event
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction
from ciaoweb.inventory.services import heartbeat, mark_stale_hosts_offline, register_inventory
from tests.api.helpers import inventory


@pytest.mark.django_db
def test_register_inventory_is_idempotent():
    report = inventory("node1", {"physnet1": 3, "physnet2": 1})
    first = register_inventory("node1", report)
    second = register_inventory("node1", report)
    assert first.pk == second.pk
    assert PhysicalFunction.objects.count() == 2 and VirtualFunction.objects.count() == 4


@pytest.mark.django_db
def test_register_inventory_drops_free_vfs_and_flags_owned_ones():
    register_inventory("node1", inventory("node1", {"physnet1": 3}))
    VirtualFunction.objects.filter(index=2).update(state="reserved")
    register_inventory("node1", inventory("node1", {"physnet1": 1}))
    states = dict(VirtualFunction.objects.values_list("index", "state"))
    assert states == {0: "free", 2: "error"}


@pytest.mark.django_db
def test_heartbeat_and_offline(settings):
    assert heartbeat("ghost") is False
    host = register_inventory("node1", inventory("node1", {}))
    settings.CIAO_HEARTBEAT_TIMEOUT = -1  # everything is stale
    assert [h.pk for h in mark_stale_hosts_offline()] == [host.pk]
    assert heartbeat("node1")
    host.refresh_from_db()
    assert host.state == "online"
    assert Event.objects.filter(kind="host.updated", message__endswith="back online").count() == 1
    seen = host.last_seen
    Host.objects.filter(pk=host.pk).update(state="maintenance")
    assert heartbeat("node1")
    host.refresh_from_db()
    assert (host.state, host.last_seen > seen) == ("maintenance", True)
