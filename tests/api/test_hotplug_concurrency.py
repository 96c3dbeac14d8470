"""An attach storm against PostgreSQL through the real API view path: many threads
hot-plug into many running instances of one host that has few free VFs. Exactly as many
succeed as there are VFs, every other request is a 409 (no VF left, or the instance
busy with another attach), no VF is booked twice and a refusal leaves nothing behind.

Skipped on SQLite (one writer: no race); CIAO_REQUIRE_SIM=1 makes that skip a failure.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from rest_framework.test import APIClient

from ciaoweb.instances.models import Attachment
from ciaoweb.instances.services import create_instance
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import Host, VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.models import IPAllocation
from ciaoweb.networks.services import create_network
from ciaoweb.operations.models import Operation
from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.services import add_member, create_tenant
from tests.api.helpers import inventory, url
from tests.worlds import provisioned

INSTANCES, FREE_VFS = 30, 5
WORKERS = 24  # below PostgreSQL's default max_connections (100)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)"
    ),
]


def test_an_attach_storm_books_each_vf_once_and_refuses_the_rest_cleanly():
    tenant = create_tenant("storm")
    user = add_member(tenant, "storm-user", "pw-storm-1", MembershipRole.MEMBER).user
    register_inventory("node0", inventory("node0", {"physnet1": FREE_VFS}))
    register_inventory("node1", inventory("node1", {"physnet1": 20}))  # no help: another host
    host = Host.objects.get(name="node0")
    networks = [
        create_network(
            tenant=tenant,
            name=f"net{n}",
            kind="sriov",
            physnet="physnet1",
            cidr=f"10.{40 + n}.0.0/24",
            ipam="controller",
        )
        for n in range(2)
    ]
    instances = [
        provisioned(create_instance(tenant=tenant, name=f"i{n}", kind="container", networks=[],
                                    host=host))
        for n in range(INSTANCES)
    ]  # fmt: skip
    # Every instance asked for by two requests at once (one per network).
    requests = [(i, n) for i in instances for n in networks]

    def hot_plug(request) -> tuple[int, dict]:
        instance, network = request
        try:
            client = APIClient()
            client.force_authenticate(user)
            answer = client.post(
                url("instances", instance, "attachments"), {"network": str(network.pk)}, "json"
            )
            return answer.status_code, answer.data
        finally:
            connections.close_all()  # each thread used its own connection

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        answers = list(pool.map(hot_plug, requests))

    statuses = Counter(status for status, _ in answers)
    assert statuses == {202: FREE_VFS, 409: len(requests) - FREE_VFS}, statuses
    no_vf = "no capacity: host node0 has no free VF left on physnet physnet1"
    reasons = Counter(
        "no VF" if data["detail"].startswith(no_vf) else data["detail"]
        for status, data in answers
        if status == 409
    )
    busy = {r for r in reasons if r != "no VF"}
    assert all("has an operation in progress: attach" in r for r in busy), reasons
    # Only the twin of a successful request can find its instance busy.
    assert sum(reasons[r] for r in busy) <= FREE_VFS, reasons

    plugged = Attachment.objects.filter(vf__isnull=False)
    vfs = list(plugged.values_list("vf", flat=True))
    assert len(vfs) == len(set(vfs)) == FREE_VFS
    assert set(plugged.values_list("vf__pf__host__name", flat=True)) == {"node0"}
    # at most one new interface per instance: its second request found it busy
    per_instance = Counter(plugged.values_list("instance", flat=True))
    assert set(per_instance.values()) == {1}
    # nothing of a refused request is left: no attachment, address or operation
    assert Attachment.objects.count() == INSTANCES + FREE_VFS  # eth0s + the plugged
    assert IPAllocation.objects.filter(purpose="attachment", network__in=networks).count() == (
        FREE_VFS
    )
    assert Operation.objects.filter(kind="attach").count() == FREE_VFS
    assert set(VirtualFunction.objects.filter(pf__host=host).values_list("state", flat=True)) == {
        VfState.RESERVED
    }
    assert (
        not VirtualFunction.objects.filter(pf__host__name="node1")
        .exclude(state=VfState.FREE)
        .exists()
    )
    answered = {str(data["vf"]) for status, data in answers if status == 202}
    assert answered == {str(vf) for vf in vfs}

    get_user_model().objects.filter(pk=user.pk).delete()
