from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse

from ciaoweb.dashboard.api_bridge import visible
from ciaoweb.dashboard.capacity import (
    quota_usage,
    tenant_vfs_per_physnet,
    usage_per_pf,
    usage_per_physnet,
)
from ciaoweb.dashboard.tenant_choice import acting_tenant, selected_tenant
from ciaoweb.dashboard.views.common import page_context, render_page
from ciaoweb.events.api.views import EventViewSet
from ciaoweb.instances.api.views import InstanceViewSet
from ciaoweb.instances.choices import InstanceState
from ciaoweb.inventory.models import Host, PhysicalFunction
from ciaoweb.networks.api.views import NetworkViewSet
from ciaoweb.networks.choices import NetworkKind
from ciaoweb.tenancy.access import is_cluster_admin

RECENT_EVENTS = 10


def instances_by_state(instances) -> list[tuple[str, str, int]]:
    """[(state, label, count)] in lifecycle order, zero counts included."""
    rows = instances.order_by().values("state").annotate(n=Count("pk", distinct=True))
    counts = {row["state"]: row["n"] for row in rows}
    return [(state, label, counts.get(state, 0)) for state, label in InstanceState.CHOICES]


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    narrow = selected_tenant(request)
    admin = is_cluster_admin(request.user)
    instances = visible(InstanceViewSet, request, narrow)
    networks = visible(NetworkViewSet, request, narrow).order_by("name")
    tenant = acting_tenant(request)
    if admin:
        physnet_usage = usage_per_physnet()  # the cluster's capacity
    elif tenant is not None:  # a member: its own tenant's VFs, never the cluster's use
        physnets = {n.physnet for n in networks if n.kind == NetworkKind.SRIOV}
        physnet_usage = tenant_vfs_per_physnet(tenant, physnets)
    else:
        physnet_usage = []
    context = page_context(
        request,
        "overview",
        networks=networks,
        instance_states=instances_by_state(instances),
        instance_total=instances.count(),
        events=visible(EventViewSet, request, narrow).order_by("-created")[:RECENT_EVENTS],
        physnet_usage=physnet_usage,
    )
    # Quotas of the member's own tenant (or the tenant an admin selected), never another's.
    if tenant is not None:
        context["quota_tenant"], context["quota"] = tenant, quota_usage(tenant)
    if admin:
        per_pf = usage_per_pf(PhysicalFunction.objects.all())
        context["hosts"] = [(host, per_pf.get(host.pk, [])) for host in Host.objects.all()]
    return render_page(
        request,
        "dashboard/overview.html",
        context,
        fragments={"overview": "dashboard/partials/overview_body.html"},
    )
