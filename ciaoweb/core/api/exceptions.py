"""Turns every error a request can provoke into a 4xx answer with a readable message.

The domain errors of `ciaoweb.core.exceptions` (raised by the scheduler, IPAM and the
services) become the DRF exceptions that give the answers API clients know:
`InvalidInput` a 400 with its per-field detail, `Conflict` and `NoCapacity` a 409 with
`{"detail": ...}`. A database that is busy (every pooled connection lent out) or out of
reach answers 503 with a `Retry-After`.
"""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, OperationalError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.fields import get_error_detail
from rest_framework.views import exception_handler as drf_exception_handler

from ciaoweb.core.exceptions import (
    CONSTRAINT_MESSAGES,
    Conflict,
    DomainError,
    InvalidInput,
)


class ConflictError(APIException):
    """409: the request clashes with the current state, or nothing is left for it."""

    status_code = status.HTTP_409_CONFLICT
    default_code = Conflict.code


class DatabaseUnavailable(APIException):
    """503: the database could not answer now (pool exhausted, a restart, a deadlock)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "the database is busy or unreachable: retry shortly"
    default_code = "database_unavailable"
    retry_after_seconds = 1


def as_api_exception(exc: DomainError) -> APIException:
    """The DRF exception answering a domain error (400 for bad input, else 409)."""
    if isinstance(exc, InvalidInput):
        return as_validation_error(exc)
    return ConflictError(detail=str(exc), code=exc.code)


def as_validation_error(exc: InvalidInput) -> ValidationError:
    """For serializers that call domain validation: DRF collects a ValidationError on
    the field (`validate_<field>`) or the serializer (`validate`), not an InvalidInput."""
    return ValidationError(detail=exc.detail, code=exc.code)


def _integrity_message(exc: IntegrityError) -> str:
    # SQLite does not name constraints in its errors; there the generic message is used.
    text = str(exc)
    for name, message in CONSTRAINT_MESSAGES.items():
        if name in text:
            return message
    first_line = text.strip().splitlines()[0] if text.strip() else "integrity error"
    return f"conflicts with existing data (a concurrent change?): {first_line}"


def _protected_message(exc: ProtectedError) -> str:
    names = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
    return f"cannot delete: still in use by {len(exc.protected_objects)} {', '.join(names)}"


def exception_handler(exc: Exception, context: dict[str, Any]):
    """DRF's handler plus domain errors, Django validation, integrity races and
    protected deletes."""
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(detail=get_error_detail(exc))
    elif isinstance(exc, ProtectedError):
        exc = as_api_exception(Conflict(_protected_message(exc)))
    elif isinstance(exc, IntegrityError):
        exc = as_api_exception(Conflict(_integrity_message(exc)))
    elif isinstance(exc, DomainError):
        exc = as_api_exception(exc)
    elif isinstance(exc, OperationalError):
        response = drf_exception_handler(DatabaseUnavailable(), context)
        response["Retry-After"] = str(DatabaseUnavailable.retry_after_seconds)
        return response
    return drf_exception_handler(exc, context)
