"""A deletion and a transaction that writes the network's DHCP server row twice (a
report's state, then a spec's revision) meet without a deadlock. PostgreSQL checks such
a row's deferred foreign keys at COMMIT, taking KEY SHARE on the network last; CI saw a
tenant deletion that held the network and waited for the server row chosen as the
victim. The deletions here run without their deadlock retry, so a cycle fails the test."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.models import Network
from ciaoweb.networks.services import create_network, delete_network
from ciaoweb.orchestration import dhcp, results
from ciaoweb.orchestration.models import DhcpServer
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.services import create_tenant, delete_tenant
from tests.api.helpers import inventory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks (set DATABASE_URL)"
)


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


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
    written, commit, errors = threading.Event(), threading.Event(), []

    def report_then_spec():
        try:
            with transaction.atomic():
                results._apply_dhcp_outcome(str(network.pk), True, "", "ns", False)
                dhcp.current_spec(DhcpServer.objects.get(network_key=network.pk), network)
                written.set()
                assert commit.wait(30)
        except Exception as exc:  # reported below
            errors.append(("writer", exc))
        finally:
            written.set()
            connections.close_all()

    def delete():
        try:
            if deletion == "tenant":
                delete_tenant.__wrapped__(tenant)
            else:
                delete_network.__wrapped__(network, with_tenant=True)
        except Exception as exc:  # reported below
            errors.append(("deletion", exc))
        finally:
            connections.close_all()

    writer = threading.Thread(target=report_then_spec)
    writer.start()
    assert written.wait(30)
    deleter = threading.Thread(target=delete)
    deleter.start()
    for _ in range(500):  # until the deletion waits for the writer's row lock
        if _waiting_on_a_lock() or not deleter.is_alive():
            break
        threading.Event().wait(0.01)
    commit.set()
    writer.join(30)
    deleter.join(30)
    assert errors == []
    assert not Network.objects.filter(pk=network.pk).exists()
    assert Tenant.objects.filter(pk=tenant.pk).exists() == (deletion == "network")
    assert DhcpServer.objects.get(network_key=network.pk).network is None  # to be removed
