"""Dashboard tests reuse the API tests' world: tenants a and b (alice, bob), an admin,
two hosts with VFs, one SR-IOV network per tenant and a shared one. Dispatch and
websocket publishing are recorded, not sent."""

import pytest
from django.test import Client

from tests.api.conftest import dispatched, fast_passwords, published, world  # noqa: F401
from tests.worlds import add_instances


def logged_in(user, enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    return client


@pytest.fixture
def pages(world):  # noqa: F811 - the imported fixture
    """Browser-like clients for the admin, alice (tenant a) and bob (tenant b), and an
    instance of each tenant on its SR-IOV network."""
    bob_user = world.net_b.tenant.memberships.get().user
    add_instances(world, "web-a", "web-b")
    world.admin_page = logged_in(world.admin_user)
    world.alice_page = logged_in(world.alice_user)
    world.bob_page = logged_in(bob_user)
    return world
