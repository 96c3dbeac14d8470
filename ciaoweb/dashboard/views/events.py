from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse

from ciaoweb.dashboard.api_bridge import visible
from ciaoweb.dashboard.forms import EventFilterForm
from ciaoweb.dashboard.pagination import paginate
from ciaoweb.dashboard.tenant_choice import selected_tenant
from ciaoweb.dashboard.views.common import page_context, render_page
from ciaoweb.events.api.views import EventViewSet
from ciaoweb.events.filtersets import EventFilterSet
from ciaoweb.tenancy.access import is_cluster_admin
from ciaoweb.tenancy.models import Tenant


@login_required
def event_list(request: HttpRequest) -> HttpResponse:
    """The audit log with the API's own filterset (kind, object type, tenant for admins)."""
    admin = is_cluster_admin(request.user)
    params = request.GET.copy()
    params.pop("page", None)
    if not admin:
        params.pop("tenant", None)  # members see their tenant's events anyway
    elif not params.get("tenant") and (chosen := selected_tenant(request)) is not None:
        params["tenant"] = str(chosen.pk)
    form = EventFilterForm(params, tenants=list(Tenant.objects.order_by("name")) if admin else None)
    filterset = EventFilterSet(params, queryset=visible(EventViewSet, request), request=request)
    valid = filterset.is_valid()
    events = filterset.qs.select_related("tenant").order_by("-created", "-pk") if valid else []
    pager = paginate(request, events, "events", params=params)
    context = page_context(
        request,
        "events",
        form=form,
        events=pager.page,
        pager=pager,
        filter_errors=filterset.errors,
    )
    return render_page(
        request,
        "dashboard/event_list.html",
        context,
        fragments={
            "events": "dashboard/partials/event_rows.html",
            "pager": "dashboard/partials/pager.html",
        },
    )
