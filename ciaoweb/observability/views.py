"""`/healthz`, `/readyz` (no authentication: probes) and `/metrics` (cluster admins).

Outside the REST API (`/api/v1/`) and out of its schema: they serve load balancers,
orchestrators and Prometheus, not API clients.
"""

from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from ciaoweb.core.api.scoping import ClusterAdminPermission

from .health import ready, run_checks
from .metrics import exposition


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process answers at all: touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, else 503; each check is given a
    second (ciaoweb.observability.health)."""
    checks = run_checks()
    return JsonResponse({"checks": checks}, status=200 if ready(checks) else 503)


class FirstRenderer(BaseContentNegotiation):
    """Errors (401, 403) are JSON whatever a scraper's Accept says; the exposition
    format is chosen from Accept by prometheus_client itself."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema(exclude=True)
class MetricsView(APIView):
    """Prometheus exposition of this process' registry (ciaoweb.observability.metrics),
    for a cluster admin's token or session."""

    permission_classes = [permissions.IsAuthenticated, ClusterAdminPermission]
    admin_only = True
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRenderer

    def get(self, request, *args, **kwargs) -> HttpResponse:
        try:
            body, content_type = exposition(request.headers.get("Accept"))
        except DatabaseError as exc:  # the cluster's families need it; say so, no 500
            return JsonResponse({"detail": f"database unavailable: {exc}"[:300]}, status=503)
        return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})
