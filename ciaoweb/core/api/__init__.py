"""API building blocks shared by every app: exception handler, tenant scoping."""

from ciaoweb.core.api.exceptions import exception_handler

__all__ = ["exception_handler"]
