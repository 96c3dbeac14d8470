from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from ciaoweb.dashboard.api_bridge import call_api, visible
from ciaoweb.dashboard.forms import AttachForm, InstanceForm, MigrateForm
from ciaoweb.dashboard.pagination import paginate
from ciaoweb.dashboard.submissions import submitted_once
from ciaoweb.dashboard.tenant_choice import acting_tenant, selected_tenant
from ciaoweb.dashboard.timeline import operations, timeline
from ciaoweb.dashboard.views.common import (
    create_from_form,
    page_context,
    render_page,
    report_api_failure,
)
from ciaoweb.instances.api.views import AttachmentViewSet, InstanceViewSet
from ciaoweb.inventory.api.views import HostViewSet
from ciaoweb.networks.api.views import NetworkViewSet
from ciaoweb.tenancy.access import is_cluster_admin
from ciaoweb.tenancy.models import Tenant


def _hosts_for_admin(request: HttpRequest) -> list | None:
    """Host targeting is admin-only in the API; members get no host field at all."""
    return list(visible(HostViewSet, request)) if is_cluster_admin(request.user) else None


def _instance_form(request: HttpRequest, data=None) -> InstanceForm:
    admin = is_cluster_admin(request.user)
    tenant = acting_tenant(request)
    networks = visible(NetworkViewSet, request, tenant).filter(is_primary=False)
    initial = {"kind": "container"}
    if admin and tenant is not None:
        initial["tenant"] = str(tenant.pk)
    return InstanceForm(
        data,
        initial=initial,
        networks=list(networks.select_related("tenant").order_by("name")),
        tenants=list(Tenant.objects.order_by("name")) if admin else None,
        hosts=_hosts_for_admin(request),
    )


@login_required
@submitted_once("dashboard:instances")
def instance_list(request: HttpRequest) -> HttpResponse:
    """The list, and the launch form posting to the same URL."""
    form = _instance_form(request, request.POST if request.method == "POST" else None)
    created, status = create_from_form(
        request,
        form,
        InstanceViewSet,
        "dashboard:instance-detail",
        "Instance {name} is being launched.",
    )
    if created is not None:
        return created
    instances = (
        visible(InstanceViewSet, request, selected_tenant(request))
        .select_related("tenant", "host")
        .order_by("name", "pk")  # names repeat across tenants: pages need a total order
    )
    pager = paginate(request, instances, "instances")
    context = page_context(request, "instances", instances=pager.page, pager=pager, form=form)
    return render_page(
        request,
        "dashboard/instance_list.html",
        context,
        fragments={
            "rows": "dashboard/partials/instance_rows.html",
            "pager": "dashboard/partials/pager.html",
        },
        status=status,
    )


@login_required
def instance_detail(request: HttpRequest, pk) -> HttpResponse:
    instance = get_object_or_404(
        visible(InstanceViewSet, request).select_related("tenant", "host"), pk=pk
    )
    attachments = (
        visible(AttachmentViewSet, request)
        .filter(instance=instance)
        .select_related("network", "vf__pf__host")
        .order_by("ifname")
    )
    context = page_context(
        request,
        "instances",
        instance=instance,
        attachments=attachments,
        timeline=timeline(request, operations(request).filter(instance=instance)),
        migrate_form=MigrateForm(hosts=_hosts_for_admin(request)),
        attach_form=AttachForm(networks=_attachable(request, instance, attachments)),
    )
    return render_page(
        request,
        "dashboard/instance_detail.html",
        context,
        fragments={
            "summary": "dashboard/partials/instance_summary.html",
            "status": "dashboard/partials/instance_network_status.html",
            "operations": "dashboard/partials/operation_timeline.html",
        },
    )


@login_required
@require_POST
@submitted_once("dashboard:instance-detail", "pk")
def instance_migrate(request: HttpRequest, pk) -> HttpResponse:
    instance = get_object_or_404(visible(InstanceViewSet, request), pk=pk)
    form = MigrateForm(request.POST, hosts=_hosts_for_admin(request))
    payload = form.payload() if form.is_valid() else {}
    result = call_api(InstanceViewSet, "migrate", request, pk=instance.pk, data=payload)
    if result.ok:
        messages.success(request, f"Instance {instance.name} is migrating.")
    else:
        report_api_failure(request, result, f"migrate {instance.name}")
    return redirect("dashboard:instance-detail", pk=instance.pk)


def _attachable(request: HttpRequest, instance, attachments) -> list:
    """SR-IOV networks the user sees and the instance's tenant may use, not attached yet
    (the API decides; this only keeps the select short)."""
    networks = visible(NetworkViewSet, request, instance.tenant).filter(
        Q(tenant=instance.tenant) | Q(shared=True), is_primary=False
    )
    return list(
        networks.exclude(pk__in=[a.network_id for a in attachments])
        .select_related("tenant")
        .order_by("name")
    )


@login_required
@require_POST
@submitted_once("dashboard:instance-detail", "pk")
def instance_attach(request: HttpRequest, pk) -> HttpResponse:
    """Hot-plug: the attach form, through the API's own action."""
    instance = get_object_or_404(visible(InstanceViewSet, request), pk=pk)
    form = AttachForm(request.POST)
    payload = form.payload() if form.is_valid() else {}
    result = call_api(InstanceViewSet, "attach", request, pk=instance.pk, data=payload)
    if result.ok:
        messages.success(
            request, f"Interface {result.data['ifname']} is being plugged into {instance.name}."
        )
    else:
        report_api_failure(request, result, f"attach to {instance.name}")
    return redirect("dashboard:instance-detail", pk=instance.pk)


@login_required
@require_POST
@submitted_once("dashboard:instance-detail", "pk")
def attachment_detach(request: HttpRequest, pk, attachment) -> HttpResponse:
    """Hot-unplug one interface (`DELETE attachments/{id}/`)."""
    instance = get_object_or_404(visible(InstanceViewSet, request), pk=pk)
    interface = get_object_or_404(
        visible(AttachmentViewSet, request).filter(instance=instance), pk=attachment
    )
    result = call_api(AttachmentViewSet, "destroy", request, pk=interface.pk)
    if result.ok:
        messages.success(request, f"Interface {interface.ifname} is being unplugged.")
    else:
        report_api_failure(request, result, f"detach {interface.ifname}")
    return redirect("dashboard:instance-detail", pk=instance.pk)


@login_required
@require_POST
@submitted_once("dashboard:instances")
def instance_delete(request: HttpRequest, pk) -> HttpResponse:
    instance = get_object_or_404(visible(InstanceViewSet, request), pk=pk)
    result = call_api(InstanceViewSet, "destroy", request, pk=instance.pk)
    if result.ok:
        messages.success(request, f"Instance {instance.name} is being deleted.")
        return redirect("dashboard:instances")
    report_api_failure(request, result, f"delete {instance.name}")
    return redirect("dashboard:instance-detail", pk=instance.pk)
