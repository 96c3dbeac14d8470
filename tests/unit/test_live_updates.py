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


def test_the_apps_register_their_live_types():
    """Each app declares its own types (`AppConfig.ready`); the events app imports none."""
    from ciaoweb.events.registry import live_type, pushed_message_types

    pushed = {"instance.updated", "attachment.updated", "host.updated", "lease.updated"}
    assert pushed <= pushed_message_types()
    assert live_type("network") is not None and not live_type("network").pushed
    assert "network.updated" not in pushed_message_types()


@pytest.mark.django_db
def test_events_are_scoped_by_the_registered_tenant_of():
    from ciaoweb.instances.models import Attachment, Instance
    from ciaoweb.networks.models import Lease, Network

    tenant = Tenant.objects.create(name="live")
    shared = Network.objects.create(
        name="shared", kind="sriov", physnet="p", vlan=7, cidr="10.7.0.0/24", shared=True
    )
    instance = Instance.objects.create(tenant=tenant, name="web", kind="container")
    attachment = Attachment.objects.create(
        instance=instance, network=shared, ifname="eth1", mac="02:00:00:00:07:01"
    )
    lease = Lease.objects.create(
        network=shared, mac=attachment.mac, ip="10.7.0.10", attachment=attachment
    )
    assert services.tenant_id_of(tenant) == tenant.pk
    assert services.tenant_id_of(instance) == tenant.pk
    assert services.tenant_id_of(attachment) == tenant.pk
    assert services.tenant_id_of(lease) == tenant.pk  # a shared network: its holder's
    assert services.tenant_id_of(shared) is None
    assert services.represent(shared)["name"] == "shared"
