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


def _created(tenant_name: str):
    from ciaoweb.instances.models import Instance

    tenant = Tenant.objects.create(name=tenant_name)
    instance = Instance.objects.create(tenant=tenant, name="web", kind="container")
    services.record(EventKind.INSTANCE_UPDATED, instance, "created")
    return instance


@pytest.mark.django_db
def test_in_a_deferral_the_work_a_commit_queues_goes_before_its_pushes(
    published, django_capture_on_commit_callbacks
):
    """A task or request (`deferred_pushes`): the node task its commit sends is not kept
    waiting while the objects are represented and published."""
    from django.db import transaction

    order = []
    with services.deferred_pushes():
        with django_capture_on_commit_callbacks(execute=True):
            _created("deferred")
            transaction.on_commit(lambda: order.append(("sent", len(published))))
        assert order == [("sent", 0)] and published == []
    assert [(t, d["name"]) for t, d in published] == [("instance.updated", "web")]


@pytest.mark.django_db
def test_a_deferral_ended_by_an_error_still_pushes_what_committed_and_only_that(
    published, django_capture_on_commit_callbacks
):
    from django.db import transaction

    with pytest.raises(RuntimeError), services.deferred_pushes():
        with django_capture_on_commit_callbacks(execute=True):
            _created("kept")
            with pytest.raises(ValueError), transaction.atomic():  # rolled back
                _created("undone")
                raise ValueError
        raise RuntimeError
    assert [d["tenant"] for _, d in published] == [str(Tenant.objects.get(name="kept").pk)]


@pytest.mark.django_db
def test_a_nested_deferral_leaves_the_pushes_to_the_outermost(
    published, django_capture_on_commit_callbacks
):
    with services.deferred_pushes():
        with services.deferred_pushes(), django_capture_on_commit_callbacks(execute=True):
            _created("nested")
        assert published == []
    assert len(published) == 1


@pytest.mark.django_db
def test_each_controller_task_defers_its_pushes_until_it_ends(
    published, django_capture_on_commit_callbacks
):
    from celery import Celery, signals

    from ciaoweb.orchestration.tasks import heartbeat  # a controller task

    signals.task_prerun.send(sender=heartbeat)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            _created("task")
        assert published == []
    finally:
        signals.task_postrun.send(sender=heartbeat)
    assert len(published) == 1
    # Another app's task (the agent's, were it in this process) defers nothing.
    another = Celery("another", set_as_current=False)

    @another.task(name="another.task", shared=False)
    def other() -> None:
        pass

    signals.task_prerun.send(sender=other)
    with django_capture_on_commit_callbacks(execute=True):
        _created("other")
    assert len(published) == 2
    signals.task_postrun.send(sender=other)
