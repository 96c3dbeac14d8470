from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from ciaoweb.dashboard.api_bridge import call_api, visible
from ciaoweb.dashboard.capacity import annotate_vf_counts
from ciaoweb.dashboard.pagination import paginate
from ciaoweb.dashboard.submissions import submitted_once
from ciaoweb.dashboard.timeline import latest_host_operations
from ciaoweb.dashboard.views.common import page_context, render_page, report_api_failure
from ciaoweb.inventory.api.views import (
    HostViewSet,
    PhysicalFunctionViewSet,
    VirtualFunctionViewSet,
)

# A host's card lists every VF (64 rows for a PF with 64 VFs): a page holds few hosts.
HOSTS_PER_PAGE = 10


@login_required
def host_list(request: HttpRequest) -> HttpResponse:
    """Cluster admins only (the API's hosts collection is 403 for members)."""
    all_hosts = visible(HostViewSet, request).order_by("name")
    pager = paginate(request, all_hosts, "hosts", HOSTS_PER_PAGE)
    hosts = list(pager.page)
    pfs = annotate_vf_counts(
        visible(PhysicalFunctionViewSet, request).filter(host__in=hosts)
    ).order_by("name")
    vfs = (
        visible(VirtualFunctionViewSet, request)
        .filter(pf__host__in=hosts)
        .select_related("attachment__instance__tenant", "attachment__network")
    )
    vfs_by_pf: dict = {}
    for vf in vfs.order_by("index"):
        vfs_by_pf.setdefault(vf.pf_id, []).append(vf)
    pfs_by_host: dict = {}
    for pf in pfs:
        pfs_by_host.setdefault(pf.host_id, []).append((pf, vfs_by_pf.get(pf.pk, [])))
    latest = latest_host_operations(request, hosts)
    for host in hosts:  # its latest evacuation or restore, shown on its card
        host.last_operation = latest.get(host.pk)
    context = page_context(
        request,
        "hosts",
        hosts=[(host, pfs_by_host.get(host.pk, [])) for host in hosts],
        pager=pager,
    )
    return render_page(
        request,
        "dashboard/host_list.html",
        context,
        fragments={
            "hosts": "dashboard/partials/host_cards.html",
            "pager": "dashboard/partials/pager.html",
        },
    )


def _host_action(request: HttpRequest, pk, action: str, done: str) -> HttpResponse:
    host = get_object_or_404(visible(HostViewSet, request), pk=pk)
    result = call_api(HostViewSet, action, request, pk=host.pk)
    if result.ok:
        messages.success(request, f"Host {host.name} {done}.")
    else:
        report_api_failure(request, result, f"{action} host {host.name}")
    return redirect("dashboard:hosts")


@login_required
@require_POST
@submitted_once("dashboard:hosts")
def host_evacuate(request: HttpRequest, pk) -> HttpResponse:
    return _host_action(request, pk, "evacuate", "is being evacuated")


@login_required
@require_POST
@submitted_once("dashboard:hosts")
def host_restore(request: HttpRequest, pk) -> HttpResponse:
    return _host_action(request, pk, "restore", "is back in service")
