"""Turns every error a request can provoke into a 4xx answer with a readable message."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from rest_framework.exceptions import ValidationError
from rest_framework.fields import get_error_detail
from rest_framework.views import exception_handler as drf_exception_handler

from ciaoweb.core.exceptions import Conflict

# Constraint name (as PostgreSQL reports it) -> what the client did wrong. SQLite does not
# name constraints in its errors; there the generic message below is used.
CONSTRAINT_MESSAGES: dict[str, str] = {}


def register_constraint_message(name: str, message: str) -> None:
    """Apps declare a readable message for their constraints (see each models.py)."""
    CONSTRAINT_MESSAGES[name] = message


def _integrity_message(exc: IntegrityError) -> str:
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
    """DRF's handler plus Django validation, integrity races and protected deletes."""
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(detail=get_error_detail(exc))
    elif isinstance(exc, ProtectedError):
        exc = Conflict(_protected_message(exc))
    elif isinstance(exc, IntegrityError):
        exc = Conflict(_integrity_message(exc))
    return drf_exception_handler(exc, context)
