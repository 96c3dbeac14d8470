"""Load: 200 concurrent API clients create and delete instances for a bounded time against
an inventory with far fewer VFs than clients, on PostgreSQL, through the real view path.

Each client is a thread with its own APIClient and its own database connection. PostgreSQL
allows 100 connections here, so at most `IN_FLIGHT` requests are inside Django at once (like
a server with that many workers) while all 200 clients contend for them. Two "agent"
threads finalize deleted instances as node agents' release reports would, so VFs are
recycled while others claim them, and a checker thread takes consistent snapshots
(REPEATABLE READ) of the allocation tables throughout.

Promised: no 5xx; the only 409 is "no capacity"; at no snapshot is a VF, an IP or a MAC held
twice; at the end every VF is free or owned by exactly one existing attachment, IP
allocations match attachments one to one, and after the last deletions every VF is free.
Set CIAO_SOAK=1 for at least 60 s of load (20 s otherwise); the load goes on past that
until the counts asserted at the end are reached, so a slow machine is not a failure.
"""

import os
import random
import threading
import time
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from ciaoweb.instances.choices import InstanceState
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.instances.services import delete_instance, finalize_instance_deletion
from ciaoweb.inventory.choices import VfState
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.models import IPAllocation
from ciaoweb.networks.services import create_network
from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.services import add_member, create_tenant
from tests.api.helpers import inventory, url

CLIENTS = 200
IN_FLIGHT = 40  # requests inside Django at once (each holds one PostgreSQL connection)
TENANTS = 4
HOSTS, VFS_PER_HOST = 4, 6  # 24 VFs for 200 clients: capacity runs out all the time
DURATION = 60.0 if os.environ.get("CIAO_SOAK") == "1" else 20.0  # of load, at least
# Past DURATION the load goes on until it has done what the assertions below count on (a
# slow machine gets there later, not never); LIMIT only stops a run that never gets there.
LIMIT = DURATION + 180.0

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
]


def snapshot_problems() -> list[str]:
    """Duplicates and dangling ownership, all read in one REPEATABLE READ snapshot."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        problems = []
        vf_owners = Counter(Attachment.objects.exclude(vf=None).values_list("vf_id", flat=True))
        problems += [f"VF {vf} owned {n} times" for vf, n in vf_owners.items() if n > 1]
        macs = Counter(Attachment.objects.values_list("mac", flat=True))
        problems += [f"MAC {m} used {n} times" for m, n in macs.items() if n > 1]
        ips = Counter(Attachment.objects.exclude(ip=None).values_list("network_id", "ip"))
        problems += [f"IP {ip} used {n} times" for ip, n in ips.items() if n > 1]
        allocations = Counter(IPAllocation.objects.values_list("network_id", "ip_int"))
        problems += [f"IP {ip} allocated {n} times" for ip, n in allocations.items() if n > 1]
        # a VF handed out is owned; a free VF is not
        owned = set(vf_owners)
        for vf_id, state in VirtualFunction.objects.values_list("pk", "state"):
            if state == VfState.FREE and vf_id in owned:
                problems.append(f"VF {vf_id} is free but owned")
            if state in (VfState.RESERVED, VfState.IN_USE) and vf_id not in owned:
                problems.append(f"VF {vf_id} is {state} without an attachment")
        return problems


def accounting_problems() -> list[str]:
    """At rest: every VF free or owned by one existing attachment, IPs match attachments."""
    problems = snapshot_problems()
    for vf in VirtualFunction.objects.all():
        owners = Attachment.objects.filter(vf=vf).count()
        if vf.state == VfState.FREE and owners:
            problems.append(f"free VF {vf.pk} has {owners} owners")
        if vf.state != VfState.FREE and owners != 1:
            problems.append(f"VF {vf.pk} is {vf.state} with {owners} owners")
    by_attachment = dict(
        IPAllocation.objects.filter(purpose="attachment").values_list("attachment_id", "ip")
    )
    for attachment in Attachment.objects.exclude(ip=None):
        if by_attachment.pop(attachment.pk, None) != attachment.ip:
            problems.append(f"attachment {attachment.pk} ip {attachment.ip} not allocated")
    problems += [f"allocation of a missing attachment {pk}" for pk in by_attachment]
    return problems


def seed():
    users, networks = [], []
    for n in range(HOSTS):
        register_inventory(f"node{n}", inventory(f"node{n}", {"physnet1": VFS_PER_HOST}))
    for t in range(TENANTS):
        tenant = create_tenant(f"load{t}")
        users.append(add_member(tenant, f"load{t}", "load-password-1", MembershipRole.MEMBER).user)
        networks.append(
            create_network(
                tenant=tenant, name="data", kind="sriov", physnet="physnet1", cidr=f"10.{t}.0.0/24"
            )
        )
    return users, networks


def test_concurrent_clients_never_share_a_vf_ip_or_mac_and_lose_nothing():
    users, networks = seed()
    capacity = HOSTS * VFS_PER_HOST
    stop = threading.Event()
    gate = threading.BoundedSemaphore(IN_FLIGHT)
    statuses: Counter = Counter()
    unexpected: list = []
    problems: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def request(client, method, path, body=None):
        with gate:
            try:
                if body is None:
                    answer = getattr(client, method)(path)
                else:
                    answer = getattr(client, method)(path, body, format="json")
            finally:
                connections.close_all()  # this thread's connection goes back
        with lock:
            statuses[(method.upper(), answer.status_code)] += 1
        return answer

    def client_loop(number: int) -> None:
        rng = random.Random(number)
        tenant = number % TENANTS
        api = APIClient()
        api.force_authenticate(get_user_model().objects.get(pk=users[tenant].pk))
        connections.close_all()
        body = {"kind": "container", "networks": [{"network": str(networks[tenant].pk)}]}
        serial = 0
        while not stop.is_set():
            serial += 1
            answer = request(api, "post", url("instances"), {**body, "name": f"c{number}-{serial}"})
            if answer.status_code == 409:
                detail = answer.json().get("detail", "")
                if not detail.startswith("no capacity"):
                    unexpected.append(("POST", 409, detail))
                time.sleep(rng.uniform(0.01, 0.05))
                continue
            if answer.status_code != 201:
                unexpected.append(("POST", answer.status_code, answer.content[:300]))
                continue
            instance_id = answer.json()["id"]
            if rng.random() < 0.5:
                answer = request(api, "get", url("instances", instance_id))
                if answer.status_code != 200:
                    unexpected.append(("GET", answer.status_code, answer.content[:300]))
            answer = request(api, "delete", url("instances", instance_id))
            if answer.status_code != 204:
                unexpected.append(("DELETE", answer.status_code, answer.content[:300]))

    def agent_loop() -> None:
        """What the agents' `instance_released` reports do: finalize deleted instances."""
        while not done.is_set():
            with gate:
                try:
                    for pk in Instance.objects.filter(state=InstanceState.DELETING).values_list(
                        "pk", flat=True
                    )[:20]:
                        finalize_instance_deletion(pk)
                finally:
                    connections.close_all()
            time.sleep(0.02)

    def checker_loop() -> None:
        while not done.is_set():
            with gate:
                try:
                    found = snapshot_problems()
                finally:
                    connections.close_all()
            with lock:
                problems.extend(found)
                statuses[("snapshots", "checked")] += 1
            time.sleep(0.2)

    clients = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    helpers = [threading.Thread(target=agent_loop) for _ in range(2)]
    helpers.append(threading.Thread(target=checker_loop))

    def enough() -> bool:
        with lock:
            return (
                statuses[("snapshots", "checked")] >= 5
                and statuses[("POST", 201)] > capacity
                and statuses[("POST", 409)] > 0
            )

    started = time.monotonic()
    for thread in helpers + clients:
        thread.start()
    while time.monotonic() - started < LIMIT:
        if time.monotonic() - started >= DURATION and enough():
            break
        time.sleep(0.2)
    stop.set()
    for thread in clients:
        thread.join()
    ran = time.monotonic() - started
    done.set()
    for thread in helpers:
        thread.join()

    requests = sum(n for (method, _), n in statuses.items() if method != "snapshots")
    summary = {f"{m} {s}": n for (m, s), n in sorted(statuses.items(), key=str)}
    print(f"\nload: {CLIENTS} clients, {ran:.0f}s, {capacity} VFs: {requests} requests, {summary}")
    assert not any(isinstance(s, int) and s >= 500 for (_, s) in statuses), summary
    assert unexpected == [], unexpected[:10]
    assert problems == [], problems[:10]
    assert statuses[("snapshots", "checked")] >= 5
    assert statuses[("POST", 201)] > capacity, "VFs were recycled many times over"
    assert statuses[("POST", 409)] > 0, "capacity ran out, as the test intends"

    # At rest, before the last release: everything accounted for.
    assert accounting_problems() == []
    # The clients deleted all they created; finalize what the agents have not yet released.
    for instance in Instance.objects.exclude(state=InstanceState.DELETING):
        delete_instance(instance)
    for pk in Instance.objects.values_list("pk", flat=True):
        finalize_instance_deletion(pk)
    assert accounting_problems() == []
    assert not Instance.objects.exists() and not Attachment.objects.exists()
    assert VirtualFunction.objects.filter(state=VfState.FREE).count() == capacity
    assert not IPAllocation.objects.filter(purpose="attachment").exists()
