from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse

from ciaoweb.dashboard.api_bridge import visible
from ciaoweb.dashboard.tenant_choice import selected_tenant
from ciaoweb.dashboard.topology import build_topology, hosts_holding
from ciaoweb.dashboard.views.common import page_context, render_page
from ciaoweb.instances.api.views import AttachmentViewSet
from ciaoweb.inventory.api.views import HostViewSet, VirtualFunctionViewSet
from ciaoweb.inventory.models import VirtualFunction
from ciaoweb.networks.api.views import NetworkViewSet
from ciaoweb.networks.choices import NetworkKind
from ciaoweb.tenancy.access import is_cluster_admin


@login_required
def topology(request: HttpRequest) -> HttpResponse:
    narrow = selected_tenant(request)
    networks = visible(NetworkViewSet, request, narrow).filter(kind=NetworkKind.SRIOV)
    if is_cluster_admin(request.user) and narrow is None:
        vfs = visible(VirtualFunctionViewSet, request)
        hosts = visible(HostViewSet, request)
        show_all_vfs = True
    else:
        # Members (and an admin looking at one tenant) see the VFs their attachments hold.
        attachments = visible(AttachmentViewSet, request, narrow)
        vfs = VirtualFunction.objects.filter(attachment__in=attachments)
        hosts = hosts_holding(vfs)
        show_all_vfs = False
    picture = build_topology(
        networks, hosts, vfs, show_all_vfs, show_hardware=is_cluster_admin(request.user)
    )
    context = page_context(request, "topology", topology=picture)
    return render_page(
        request,
        "dashboard/topology.html",
        context,
        fragments={"svg": "dashboard/partials/topology_svg.html"},
    )
