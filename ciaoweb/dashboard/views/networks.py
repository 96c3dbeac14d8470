from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from ciaoweb.dashboard.api_bridge import call_api, visible
from ciaoweb.dashboard.forms import NetworkForm
from ciaoweb.dashboard.pagination import paginate
from ciaoweb.dashboard.submissions import submitted_once
from ciaoweb.dashboard.tenant_choice import acting_tenant, selected_tenant
from ciaoweb.dashboard.views.common import (
    create_from_form,
    page_context,
    render_page,
    report_api_failure,
)
from ciaoweb.instances.api.views import AttachmentViewSet
from ciaoweb.inventory.models import PhysicalFunction
from ciaoweb.networks.api.views import LeaseViewSet, NetworkViewSet
from ciaoweb.networks.models import IPv4SortKey
from ciaoweb.tenancy.access import is_cluster_admin
from ciaoweb.tenancy.models import Tenant


def _network_form(request: HttpRequest, data=None) -> NetworkForm:
    tenants = list(Tenant.objects.order_by("name")) if is_cluster_admin(request.user) else None
    initial = {"ipam": "controller"}
    if tenants is not None and (chosen := selected_tenant(request)) is not None:
        initial["tenant"] = str(chosen.pk)
    return NetworkForm(data, tenants=tenants, initial=initial)


def _physnets() -> list[str]:
    """Suggestions for the physnet field: what the agents reported."""
    return sorted(set(PhysicalFunction.objects.values_list("physnet", flat=True)))


@login_required
@submitted_once("dashboard:networks")
def network_list(request: HttpRequest) -> HttpResponse:
    """The list, and the create form posting to the same URL."""
    form = _network_form(request, request.POST if request.method == "POST" else None)
    created, status = create_from_form(
        request, form, NetworkViewSet, "dashboard:network-detail", "Network {name} created."
    )
    if created is not None:
        return created
    networks = (
        visible(NetworkViewSet, request, selected_tenant(request))
        .select_related("tenant")
        .order_by("name", "pk")
    )
    pager = paginate(request, networks, "networks")
    context = page_context(
        request, "networks", networks=pager.page, pager=pager, form=form, physnets=_physnets()
    )
    return render_page(
        request,
        "dashboard/network_list.html",
        context,
        fragments={
            "rows": "dashboard/partials/network_rows.html",
            "pager": "dashboard/partials/pager.html",
        },
        status=status,
    )


@login_required
def network_detail(request: HttpRequest, pk) -> HttpResponse:
    network = get_object_or_404(visible(NetworkViewSet, request), pk=pk)
    attachments = (
        visible(AttachmentViewSet, request)
        .filter(network=network)
        .select_related("instance__host", "vf")
        .order_by("instance__name")
    )
    by_ip = (IPv4SortKey("ip"), "pk")  # by number: SQLite keeps addresses as text
    leases = visible(LeaseViewSet, request).filter(network=network).order_by(*by_ip)
    pager = paginate(request, leases, "leases")
    mine = acting_tenant(request)
    context = page_context(
        request,
        "networks",
        network=network,
        attachments=attachments,
        leases=pager.page,
        pager=pager,
        # Members delete their own tenant's networks (not a shared one another tenant owns).
        can_delete=is_cluster_admin(request.user)
        or (network.tenant_id is not None and network.tenant_id == getattr(mine, "pk", None)),
    )
    return render_page(
        request,
        "dashboard/network_detail.html",
        context,
        fragments={
            "attachments": "dashboard/partials/network_attachments.html",
            "leases": "dashboard/partials/lease_rows.html",
            "pager": "dashboard/partials/pager.html",
        },
    )


@login_required
@require_POST
@submitted_once("dashboard:networks")
def network_delete(request: HttpRequest, pk) -> HttpResponse:
    network = get_object_or_404(visible(NetworkViewSet, request), pk=pk)
    result = call_api(NetworkViewSet, "destroy", request, pk=network.pk)
    if result.ok:
        messages.success(request, f"Network {network.name} deleted.")
        return redirect("dashboard:networks")
    report_api_failure(request, result, f"delete network {network.name}")
    return redirect("dashboard:network-detail", pk=network.pk)
