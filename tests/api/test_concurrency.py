"""Many instance creations at once against PostgreSQL, through the real API view path.

Skipped on SQLite (one writer at a time: there is no race to test); under
CIAO_REQUIRE_SIM=1 the root conftest turns that skip into a failure, so CI must run it
against PostgreSQL.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from rest_framework.test import APIClient

from ciaoweb.instances.models import Attachment
from ciaoweb.inventory import load
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.ipam import host_range
from ciaoweb.networks.models import IPAllocation
from ciaoweb.networks.services import create_network
from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.services import add_member, create_tenant
from tests.api.helpers import inventory, url

HOSTS, VFS_PER_HOST = 4, 25  # exactly 100 VFs
EXTRA_REQUESTS = 10
WORKERS = 24  # below PostgreSQL's default max_connections (100)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
    ),
]


def test_parallel_creations_never_share_a_vf_ip_or_mac():
    tenant = create_tenant("busy")
    user = add_member(tenant, "busy-user", "pw-busy-1", MembershipRole.MEMBER).user
    for n in range(HOSTS):
        register_inventory(f"node{n}", inventory(f"node{n}", {"physnet1": VFS_PER_HOST}))
    network = create_network(
        tenant=tenant, name="data", kind="sriov", physnet="physnet1", cidr="192.168.0.0/24"
    )
    capacity = HOSTS * VFS_PER_HOST

    def create(number: int) -> tuple[int, dict]:
        try:
            client = APIClient()
            client.force_authenticate(user)
            body = {
                "name": f"i{number}",
                "kind": "container",
                "networks": [{"network": str(network.pk)}],
            }
            answer = client.post(url("instances"), body, format="json")
            return answer.status_code, answer.data
        finally:
            connections.close_all()  # each thread used its own connection

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(create, range(capacity + EXTRA_REQUESTS)))

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: capacity, 409: EXTRA_REQUESTS}, statuses
    for status, data in results:
        if status == 409:
            assert data["detail"].startswith("no capacity: "), data

    attachments = Attachment.objects.all()
    vfs = [a.vf_id for a in attachments if a.vf_id]
    macs = [a.mac for a in attachments]
    ips = [(a.network_id, a.ip) for a in attachments]
    assert len(vfs) == len(set(vfs)) == capacity
    assert len(macs) == len(set(macs)) == 2 * capacity
    assert len(ips) == len(set(ips)) == 2 * capacity
    assert IPAllocation.objects.filter(network=network, purpose="attachment").count() == capacity
    assert not VirtualFunction.objects.filter(state="free").exists()

    # After the last free VF: a clear 409, not a 500.
    status, data = create(capacity + EXTRA_REQUESTS)
    assert status == 409
    assert data["detail"] == "no capacity: no online host has 1 free VF(s) on physnet physnet1"
    # and the created ones spread over every host
    placed = Counter(
        VirtualFunction.objects.filter(state="reserved").values_list("pf__host", flat=True)
    )
    assert sorted(placed.values()) == [VFS_PER_HOST] * HOSTS
    assert load.drift() == {}  # the scheduler's per-host counters match the instances
    # and the networks' free ranges match the ledger: the next address is the lowest free
    ranges = list(network.free_ranges.order_by("first").values_list("first", "last"))
    taken = set(network.allocations.values_list("ip_int", flat=True))
    low, high = host_range(network)
    assert ranges and ranges[0][0] == min(set(range(low, high + 1)) - taken)

    get_user_model().objects.filter(pk=user.pk).delete()
