"""A deletion and a transaction that writes the network's DHCP server row twice (a
report's state, then a spec's revision) meet without a deadlock. PostgreSQL checks such
a row's deferred foreign keys at COMMIT, taking KEY SHARE on the network last; CI saw a
tenant deletion that held the network and waited for the server row chosen as the
victim. The deletions here run without their deadlock retry, so a cycle fails the test."""

from __future__ import annotations

import pytest
from django.db import connection

from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.models import Network
from ciaoweb.networks.services import create_network, delete_network
from ciaoweb.orchestration import dhcp, results
from ciaoweb.orchestration.models import DhcpServer
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.services import create_tenant, delete_tenant
from tests.api.helpers import inventory
from tests.lockrace import meet

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks (set DATABASE_URL)"
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deletion", ["tenant", "network"])
def test_a_deletion_waits_for_a_twice_written_server_row_without_a_cycle(deletion):
    node = {**inventory("netnode", {"physnet1": 2}), "is_network_node": True}
    register_inventory("netnode", node)
    tenant = create_tenant("acme")
    network = create_network(
        tenant=tenant, name="data", kind="sriov", physnet="physnet1", vlan=100,
        cidr="192.168.10.0/24", ipam="controller",
    )  # fmt: skip
    assert dhcp._place(network) is not None

    def report_then_spec() -> None:
        results._apply_dhcp_outcome(str(network.pk), True, "", "ns", False)
        dhcp.current_spec(DhcpServer.objects.get(network_key=network.pk), network)

    def delete() -> None:
        if deletion == "tenant":
            delete_tenant.__wrapped__(tenant)
        else:
            delete_network.__wrapped__(network, with_tenant=True)

    errors = meet(report_then_spec, delete)
    assert errors == []
    assert not Network.objects.filter(pk=network.pk).exists()
    assert Tenant.objects.filter(pk=tenant.pk).exists() == (deletion == "network")
    assert DhcpServer.objects.get(network_key=network.pk).network is None  # to be removed
