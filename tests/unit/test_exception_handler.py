from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError

from ciaoweb.core.api.exceptions import exception_handler


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
