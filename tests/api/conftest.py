"""Fixtures for API tests: two tenants with a member each, an admin, and a small cluster.

Requests to the controller's worker and websocket publishing are replaced by recorders,
so these tests need neither Celery nor Redis and can assert what would have been sent.
"""

import pytest

from tests.worlds import in_process_world, with_clients


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def dispatched(monkeypatch):
    """Every request queued for the controller's worker, as (task name, args)."""
    calls: list[tuple] = []
    monkeypatch.setattr(
        "ciaoweb.operations.queue.enqueue", lambda name, *args: calls.append((name, args))
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
    passwords = {"root": "secret-root", "alice": "secret-alice", "bob": "secret-bob"}
    return with_clients(in_process_world(passwords))
