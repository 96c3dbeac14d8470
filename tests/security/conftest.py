"""Fixtures for the hostile-input, isolation and load tests.

Node tasks are recorded, not sent (the root conftest sets CIAO_DISPATCH=record), so the
real orchestration code runs after commit as it would in production. Websocket messages go
to an in-memory channel layer, never to the machine's Redis.
"""

import pytest
from rest_framework.authtoken.models import Token

from tests.worlds import in_process_world, with_clients

IN_MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = IN_MEMORY_LAYER


PASSWORDS = {
    "root": "secret-root-pw",
    "alice": "secret-alice-pw",
    "carol": "secret-carol-pw",
    "bob": "secret-bob-pw",
}


def seed_world():
    """Tenants a and b (members alice / bob, tenant admin carol in a), a cluster admin,
    hosts node1 and node2 with VFs on physnet1 and physnet2, one SR-IOV network per tenant,
    a shared network, and one instance per tenant (so every collection has rows)."""
    return in_process_world(PASSWORDS, tenant_admin=True, instances=("web", "web"))


@pytest.fixture
def world(db):
    return with_clients(seed_world())


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key
