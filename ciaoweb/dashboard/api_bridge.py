"""The dashboard's only way to the data: through the REST API's own viewsets.

Reads use a viewset's `get_queryset()` (the one tenant-scoping mixin, so another
tenant's object is simply absent → 404, and `admin_only` collections are 403).
Writes run the viewset action itself on an internal JSON request, so the dashboard gets
exactly the API's permissions, serializer validation, services and error messages.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.handlers.wsgi import WSGIRequest
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication

from ciaoweb.tenancy.access import is_cluster_admin
from ciaoweb.tenancy.models import Tenant

# The HTTP method each viewset action answers to.
ACTION_METHODS = {
    "create": "post",
    "destroy": "delete",
    "migrate": "post",
    "attach": "post",
    "evacuate": "post",
    "restore": "post",
}


class DashboardSessionAuthentication(BaseAuthentication):
    """Trusts the user of the dashboard request that carries the internal call: that
    request already went through the session and CSRF middleware."""

    def authenticate(self, request):
        user = getattr(request._request, "dashboard_user", None)
        return (user, None) if user is not None and user.is_authenticated else None


def _viewset(viewset_class: type, request: HttpRequest, action: str = "list"):
    return viewset_class(request=request, action=action, args=(), kwargs={}, format_kwarg=None)


def visible(viewset_class: type, request: HttpRequest, narrow_to: Tenant | None = None) -> QuerySet:
    """What the user may see through this API collection.

    `narrow_to` is an admin's tenant selector: it only filters the list (that tenant's
    objects plus what it shares), it grants nothing.
    """
    view = _viewset(viewset_class, request)
    if getattr(view, "admin_only", False) and not is_cluster_admin(request.user):
        raise PermissionDenied("only cluster administrators may see this")
    queryset = view.get_queryset()
    if narrow_to is not None and view.tenant_lookup is not None:
        wanted = Q(**{view.tenant_lookup: narrow_to.pk})
        if (shared := view.shared_q(narrow_to)) is not None:
            wanted |= shared
        queryset = queryset.filter(wanted).distinct()
    return queryset


@dataclass(frozen=True)
class ApiResult:
    status: int
    data: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _internal_request(request: HttpRequest, method: str, data: dict | None) -> WSGIRequest:
    body = json.dumps(data if data is not None else {}).encode()
    environ = {
        "REQUEST_METHOD": method.upper(),
        "PATH_INFO": request.path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "dashboard.internal",
        "SERVER_PORT": "80",
        "HTTP_HOST": request.get_host(),
        "REMOTE_ADDR": request.META.get("REMOTE_ADDR", ""),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": request.scheme,
    }
    internal = WSGIRequest(environ)
    internal.dashboard_user = request.user
    return internal


def call_api(
    viewset_class: type,
    action: str,
    request: HttpRequest,
    *,
    pk: Any = None,
    data: dict | None = None,
) -> ApiResult:
    """Run one API action as the dashboard's user; returns the API's status and body."""
    method = ACTION_METHODS[action]
    view = viewset_class.as_view(
        {method: action}, authentication_classes=[DashboardSessionAuthentication]
    )
    kwargs = {"pk": str(pk)} if pk is not None else {}
    response = view(_internal_request(request, method, data), **kwargs)
    return ApiResult(status=response.status_code, data=response.data)
