"""A transaction PostgreSQL ends as a deadlock's victim is run again, once the other side
has committed (CI saw a tenant deletion deadlock with a DHCP report and answer 500)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, transaction

from ciaoweb.core.locks import retried_on_deadlock
from ciaoweb.networks import services as network_services
from ciaoweb.networks.models import Network
from ciaoweb.networks.services import create_network, delete_network
from ciaoweb.tenancy.models import Tenant
from ciaoweb.tenancy.services import create_tenant, delete_tenant


class _Sql(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _error(sqlstate: str) -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = _Sql(sqlstate)  # what Django's wrapper keeps of psycopg's error
    return error


def _recording_fails_first(monkeypatch, sqlstate: str) -> list[int]:
    """The network deletion's event recording raises `sqlstate` once, then records."""
    real = network_services.record
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise _error(sqlstate)
        return real(*args, **kwargs)

    monkeypatch.setattr(network_services, "record", flaky)
    return calls


@pytest.mark.django_db(transaction=True)
def test_a_tenant_deletion_chosen_as_a_deadlock_victim_is_done_on_the_second_try(monkeypatch):
    tenant = create_tenant("acme")
    create_network(tenant=tenant, name="data", kind="sriov", physnet="p", cidr="10.9.0.0/24")
    calls = _recording_fails_first(monkeypatch, "40P01")
    delete_tenant(tenant)
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    assert not Network.objects.filter(tenant_id=tenant.pk).exists()
    assert len(calls) > 1  # the first try's work was rolled back and done again


@pytest.mark.django_db(transaction=True)
def test_other_database_errors_and_inner_transactions_are_not_retried(monkeypatch):
    tenant = create_tenant("acme")
    network = create_network(
        tenant=tenant, name="data", kind="sriov", physnet="p", cidr="10.9.0.0/24"
    )
    _recording_fails_first(monkeypatch, "57P01")  # admin shutdown
    with pytest.raises(OperationalError):
        delete_network(network)
    _recording_fails_first(monkeypatch, "40P01")
    with pytest.raises(OperationalError), transaction.atomic():
        delete_network(network)  # the outer transaction is the one to run again
    assert Network.objects.filter(pk=network.pk).exists()


def test_the_last_attempt_passes_the_deadlock_up():
    tries = []

    @retried_on_deadlock
    def always_a_victim():
        tries.append(1)
        raise _error("40P01")

    with pytest.raises(OperationalError):
        always_a_victim()
    assert len(tries) == 3
