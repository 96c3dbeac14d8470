"""What `record` pushes to websocket clients: the object as REST shows it after commit
(so no serializer runs under the caller's row locks), or, for a deletion, as it was."""

import pytest

from ciaoweb.events import services
from ciaoweb.events.choices import EventKind
from ciaoweb.tenancy.models import Tenant


@pytest.fixture
def published(monkeypatch):
    monkeypatch.setattr(services, "notify", _real_notify)
    messages: list[tuple] = []
    monkeypatch.setattr(
        "ciaoweb.events.broadcast.publish",
        lambda message_type, tenant_id, data: messages.append((message_type, data)),
    )
    return messages


_real_notify = services.notify


@pytest.mark.django_db
def test_the_representation_is_taken_after_commit(published, django_capture_on_commit_callbacks):
    from ciaoweb.instances.models import Instance

    tenant = Tenant.objects.create(name="live")
    with django_capture_on_commit_callbacks(execute=True):
        instance = Instance.objects.create(tenant=tenant, name="web", kind="container")
        services.record(EventKind.INSTANCE_UPDATED, instance, "created")
        instance.state = "running"
        instance.save(update_fields=["state"])
        assert published == []  # nothing before commit
    assert [(t, d["state"]) for t, d in published] == [("instance.updated", "running")]


@pytest.mark.django_db
def test_a_deletion_carries_the_last_state(published, django_capture_on_commit_callbacks):
    from ciaoweb.instances.models import Instance

    tenant = Tenant.objects.create(name="live")
    instance = Instance.objects.create(tenant=tenant, name="web", kind="container")
    with django_capture_on_commit_callbacks(execute=True):
        services.record(EventKind.INSTANCE_DELETED, instance, "deleted")
        instance.delete()
    assert [(t, d["name"], d["deleted"]) for t, d in published] == [
        ("instance.updated", "web", True)
    ]
