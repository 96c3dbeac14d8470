"""Dashboard tests reuse the API tests' world: tenants a and b (alice, bob), an admin,
two hosts with VFs, one SR-IOV network per tenant and a shared one. Dispatch and
websocket publishing are recorded, not sent."""

import pytest
from django.test import Client

from ciaoweb.instances.services import NetworkRequest, create_instance
from tests.api.conftest import dispatched, fast_passwords, published, world  # noqa: F401


def logged_in(user, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    return client


@pytest.fixture
def pages(world):  # noqa: F811 - the imported fixture
    """Browser-like clients for the admin, alice (tenant a) and bob (tenant b), and an
    instance of each tenant on its SR-IOV network."""
    bob_user = world.net_b.tenant.memberships.get().user
    inst_a = create_instance(
        tenant=world.tenant_a,
        name="web-a",
        kind="container",
        networks=[NetworkRequest(network=world.net_a)],
    )
    inst_b = create_instance(
        tenant=world.tenant_b,
        name="web-b",
        kind="container",
        networks=[NetworkRequest(network=world.net_b)],
    )
    world.admin_page = logged_in(world.admin_user)
    world.alice_page = logged_in(world.alice_user)
    world.bob_page = logged_in(bob_user)
    world.inst_a, world.inst_b = inst_a, inst_b
    return world
