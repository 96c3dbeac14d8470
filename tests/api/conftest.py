"""Fixtures for API tests: two tenants with a member each, an admin, and a small cluster.

Orchestration dispatch and websocket publishing are replaced by recorders, so these tests
need neither Celery nor Redis and can assert what would have been sent.
"""

from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model

from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.services import create_network
from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.services import add_member, create_tenant
from tests.api.helpers import client_for, inventory


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def dispatched(monkeypatch):
    """Every orchestration hook call, as (function, args)."""
    calls: list[tuple] = []
    monkeypatch.setattr(
        "ciaoweb.core.hooks._call_dispatch", lambda function, *args: calls.append((function, args))
    )
    return calls


@pytest.fixture(autouse=True)
def published(monkeypatch):
    """Every websocket message that would be published after commit."""
    messages: list[tuple] = []
    monkeypatch.setattr(
        "ciaoweb.events.services.notify",
        # `data` is taken after commit in production; here, at once (tests roll back)
        lambda message_type, tenant_id, data: messages.append((message_type, tenant_id, data())),
    )
    return messages


@pytest.fixture
def world(db):
    """Tenants a and b (member alice / bob), admin, hosts node1 and node2 with physnet1
    (4 VFs) and physnet2 (2 VFs), and one SR-IOV network per tenant plus a shared one."""
    User = get_user_model()
    admin_user = User.objects.create_superuser("root", password="secret-root")
    tenant_a, tenant_b = create_tenant("tenant-a"), create_tenant("tenant-b")
    alice = add_member(tenant_a, "alice", "secret-alice", MembershipRole.MEMBER).user
    bob = add_member(tenant_b, "bob", "secret-bob", MembershipRole.MEMBER).user
    hosts = [
        register_inventory(n, inventory(n, {"physnet1": 4, "physnet2": 2}))
        for n in ("node1", "node2")
    ]
    sriov = {"kind": "sriov", "physnet": "physnet1", "ipam": "controller"}
    net_a = create_network(tenant=tenant_a, name="data", vlan=100, cidr="192.168.10.0/24", **sriov)
    net_b = create_network(tenant=tenant_b, name="data", vlan=101, cidr="192.168.10.0/24", **sriov)
    shared = create_network(tenant=None, name="public", vlan=300, cidr="172.16.0.0/24", **sriov)
    return SimpleNamespace(
        admin=client_for(admin_user),
        alice=client_for(alice),
        bob=client_for(bob),
        admin_user=admin_user,
        alice_user=alice,
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        hosts=hosts,
        net_a=net_a,
        net_b=net_b,
        shared=shared,
    )
