"""Fixtures for the hostile-input, isolation and load tests.

Node tasks are recorded, not sent (the root conftest sets CIAO_DISPATCH=record), so the
real orchestration code runs after commit as it would in production. Websocket messages go
to an in-memory channel layer, never to the machine's Redis.
"""

from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from ciaoweb.inventory.services import register_inventory
from ciaoweb.networks.services import create_network
from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.services import add_member, create_tenant
from tests.api.helpers import client_for, inventory

IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER


def seed_world():
    """Tenants a and b (members alice / bob, tenant admin carol in a), a cluster admin,
    hosts node1 and node2 with VFs on physnet1 and physnet2, one SR-IOV network per tenant,
    a shared network, and one instance per tenant (so every collection has rows)."""
    from ciaoweb.instances.services import NetworkRequest, create_instance

    User = get_user_model()
    admin_user = User.objects.create_superuser("root", password="secret-root-pw")
    tenant_a, tenant_b = create_tenant("tenant-a"), create_tenant("tenant-b")
    alice = add_member(tenant_a, "alice", "secret-alice-pw", MembershipRole.MEMBER).user
    carol = add_member(tenant_a, "carol", "secret-carol-pw", MembershipRole.ADMIN).user
    bob = add_member(tenant_b, "bob", "secret-bob-pw", MembershipRole.MEMBER).user
    hosts = [
        register_inventory(n, inventory(n, {"physnet1": 4, "physnet2": 2}))
        for n in ("node1", "node2")
    ]
    sriov = {"kind": "sriov", "physnet": "physnet1", "ipam": "controller"}
    net_a = create_network(tenant=tenant_a, name="data", vlan=100, cidr="192.168.10.0/24", **sriov)
    net_b = create_network(tenant=tenant_b, name="data", vlan=101, cidr="192.168.10.0/24", **sriov)
    shared = create_network(tenant=None, name="public", vlan=300, cidr="172.16.0.0/24", **sriov)
    inst_a = create_instance(
        tenant=tenant_a, name="web", kind="container", networks=[NetworkRequest(network=net_a)]
    )
    inst_b = create_instance(
        tenant=tenant_b, name="web", kind="container", networks=[NetworkRequest(network=net_b)]
    )
    return SimpleNamespace(
        admin_user=admin_user,
        alice_user=alice,
        carol_user=carol,
        bob_user=bob,
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        hosts=hosts,
        net_a=net_a,
        net_b=net_b,
        shared=shared,
        inst_a=inst_a,
        inst_b=inst_b,
    )


@pytest.fixture
def world(db):
    w = seed_world()
    w.admin = client_for(w.admin_user)
    w.alice = client_for(w.alice_user)
    w.bob = client_for(w.bob_user)
    w.carol = client_for(w.carol_user)
    return w


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key
