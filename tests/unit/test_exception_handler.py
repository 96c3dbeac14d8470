from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError

from ciaoweb.core.api.exceptions import exception_handler
from ciaoweb.core.exceptions import Conflict, InvalidInput, NoCapacity


def test_integrity_error_becomes_409_with_known_message():
    error = IntegrityError(
        'duplicate key value violates unique constraint "networks_ipallocation_unique_network_ip"'
    )
    response = exception_handler(error, {})
    assert response.status_code == 409
    assert response.data["detail"] == "this IP address is already taken on the network"


def test_unknown_integrity_error_is_still_409():
    response = exception_handler(IntegrityError("UNIQUE constraint failed: x.y"), {})
    assert response.status_code == 409 and "conflicts with existing data" in response.data["detail"]


def test_django_validation_error_is_400_per_field():
    response = exception_handler(DjangoValidationError({"name": ["bad"]}), {})
    assert response.status_code == 400 and response.data == {"name": ["bad"]}


def test_invalid_input_is_400_with_its_detail():
    response = exception_handler(InvalidInput({"host": ["host a is offline"]}), {})
    assert response.status_code == 400 and response.data == {"host": ["host a is offline"]}
    response = exception_handler(InvalidInput("not a valid IPv4 CIDR"), {})
    assert response.status_code == 400 and response.data == ["not a valid IPv4 CIDR"]


def test_invalid_input_nests_per_list_item_like_drf():
    error = InvalidInput({"networks": [{}, {"ip": ["10.0.0.1 is the gateway of n"]}]})
    response = exception_handler(error, {})
    assert response.status_code == 400
    assert response.data == {"networks": [{}, {"ip": ["10.0.0.1 is the gateway of n"]}]}
    assert error.messages() == ["networks[1]: ip: 10.0.0.1 is the gateway of n"]


def test_conflict_and_no_capacity_are_409_with_a_detail():
    response = exception_handler(Conflict("network n is in use"), {})
    assert response.status_code == 409 and response.data == {"detail": "network n is in use"}
    response = exception_handler(NoCapacity("no free VLAN left"), {})
    assert response.status_code == 409
    assert response.data == {"detail": "no capacity: no free VLAN left"}
    assert response.data["detail"].code == "no_capacity"


def test_a_busy_or_unreachable_database_is_503_with_retry_after():
    """Every pooled connection lent out (Django raises psycopg_pool's PoolTimeout as an
    OperationalError), or the database restarting: the client is told to retry."""
    from django.db import OperationalError

    response = exception_handler(OperationalError("couldn't get a connection after 30 sec"), {})
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert response.data["detail"].code == "database_unavailable"


def test_the_controller_worker_refuses_a_connection_pool(monkeypatch):
    """Pool sockets opened in the worker's main process would be shared by its children."""
    import pytest
    from django.conf import settings

    from ciaoweb.celery import _refuse_a_connection_pool

    _refuse_a_connection_pool()  # no pool: starts
    monkeypatch.setitem(settings.DATABASES["default"], "OPTIONS", {"pool": {"max_size": 4}})
    with pytest.raises(RuntimeError, match="CIAO_DATABASE_POOL_SIZE"):
        _refuse_a_connection_pool()
