"""A `releasing` VF whose release report was lost is freed when its host's agent
registers without holding it; held ones and a migrating instance's stay."""

import pytest

from ciaoweb.instances.services import NetworkRequest, create_instance, free_unheld_releasing_vfs
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.services import create_network
from ciaoweb.tenancy.services import create_tenant
from tests.api.helpers import inventory


def _releasing(vf: VirtualFunction, mac: str) -> None:
    VirtualFunction.objects.filter(pk=vf.pk).update(state="releasing", mac=mac)


@pytest.mark.django_db
def test_only_unheld_vfs_of_no_migration_are_freed():
    host = register_inventory("node1", inventory("node1", {"physnet1": 4}))
    tenant = create_tenant("acme")
    network = create_network(
        tenant=tenant, name="data", kind="sriov", physnet="physnet1", cidr="10.5.0.0/24"
    )
    moving = create_instance(
        tenant=tenant, name="moving", kind="container", networks=[NetworkRequest(network=network)]
    )
    moving_mac = moving.attachments.get(network=network).mac
    type(moving).objects.filter(pk=moving.pk).update(state="migrating")
    free = list(VirtualFunction.objects.filter(state="free").order_by("index"))
    lost, held, source = free[:3]
    _releasing(lost, "02:00:00:00:00:01")
    _releasing(held, "02:00:00:00:00:02")
    _releasing(source, moving_mac)  # the migrating instance's source VF

    freed = free_unheld_releasing_vfs(host, {f"ens0/{held.index}": "someone"})

    assert [vf.pk for vf in freed] == [lost.pk]
    states = dict(VirtualFunction.objects.values_list("pk", "state"))
    assert (states[lost.pk], states[held.pk], states[source.pk]) == (
        "free",
        "releasing",
        "releasing",
    )
