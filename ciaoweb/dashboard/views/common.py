"""What every page needs: the layout context, partial re-rendering for live refreshes,
and turning an API answer into a message or a form error."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from ciaoweb.dashboard.api_bridge import ApiResult, call_api
from ciaoweb.dashboard.forms import show_api_errors
from ciaoweb.dashboard.tenant_choice import acting_tenant, selected_tenant
from ciaoweb.tenancy.access import is_cluster_admin
from ciaoweb.tenancy.models import Tenant

# Instance states during which the agent is still at work: pages show a spinner.
BUSY_INSTANCE_STATES = ("pending", "provisioning", "migrating", "deleting")


def page_context(request: HttpRequest, section: str, **extra: Any) -> dict[str, Any]:
    admin = is_cluster_admin(request.user)
    return {
        "section": section,
        "is_admin": admin,
        "all_tenants": list(Tenant.objects.order_by("name")) if admin else [],
        "selected_tenant": selected_tenant(request),
        "acting_tenant": acting_tenant(request),
        "busy_states": BUSY_INSTANCE_STATES,
        **extra,
    }


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    fragments: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page, or with `?fragment=<name>` only that partial: live.js swaps it in when a
    websocket message concerns something the page cannot patch by itself."""
    name = request.GET.get("fragment")
    if name:
        if not fragments or name not in fragments:
            raise Http404("no such fragment")
        return render(request, fragments[name], context)
    return render(request, template, context, status=status)


def report_api_failure(request: HttpRequest, result: ApiResult, doing: str) -> None:
    """A refused action that has no form to show its messages on."""
    if result.status == 404:
        raise Http404("not found")
    data = result.data
    if isinstance(data, dict):
        text = "; ".join(
            f"{'' if key in ('detail', 'non_field_errors') else key + ': '}"
            + (" ".join(map(str, value)) if isinstance(value, list) else str(value))
            for key, value in data.items()
        )
    else:
        text = str(data)
    messages.error(request, f"Could not {doing}: {text}")


def create_from_form(
    request: HttpRequest, form, viewset: type, detail_route: str, success: str
) -> tuple[HttpResponse | None, int]:
    """A list page's create form, posted: run the API's own `create` on it. Returns a
    redirect to the new object's page, or None and the status to render the form with
    (the API's field messages shown on it)."""
    if request.method != "POST" or not form.is_valid():
        return None, 200
    result = call_api(viewset, "create", request, data=form.payload())
    if result.ok:
        messages.success(request, success.format(**result.data))
        return redirect(detail_route, pk=result.data["id"]), 302
    show_api_errors(form, result)
    return None, 400
