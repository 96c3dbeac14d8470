from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ciaoweb.dashboard.tenant_choice import select_tenant
from ciaoweb.tenancy.access import is_cluster_admin


@login_required
@require_POST
def choose_tenant(request: HttpRequest) -> HttpResponse:
    """The admin's tenant selector; returns to the page it was used on."""
    if not is_cluster_admin(request.user):
        raise PermissionDenied("only cluster administrators switch tenants")
    select_tenant(request, request.POST.get("tenant", ""))
    target = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)
