"""A cluster admin's tenant selector, kept in the session.

It narrows the admin's lists and pre-fills the tenant of new objects; it never widens
what anyone may see (members always act for their own tenant).
"""

from __future__ import annotations

from django.http import HttpRequest

from ciaoweb.tenancy.access import is_cluster_admin, tenant_of
from ciaoweb.tenancy.models import Tenant

SESSION_KEY = "dashboard_tenant_id"


def selected_tenant(request: HttpRequest) -> Tenant | None:
    """The tenant an admin picked, or None for "all tenants" (and for members)."""
    if not is_cluster_admin(request.user):
        return None
    tenant_id = request.session.get(SESSION_KEY)
    if not tenant_id:
        return None
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:  # deleted meanwhile
        request.session.pop(SESSION_KEY, None)
    return tenant


def select_tenant(request: HttpRequest, tenant_id: str) -> Tenant | None:
    """Store the admin's choice; an empty or unknown id means all tenants."""
    tenant = Tenant.objects.filter(pk=tenant_id).first() if tenant_id else None
    if tenant is None:
        request.session.pop(SESSION_KEY, None)
    else:
        request.session[SESSION_KEY] = str(tenant.pk)
    return tenant


def acting_tenant(request: HttpRequest) -> Tenant | None:
    """Whose objects the pages show: a member's own tenant, or the admin's selection."""
    if is_cluster_admin(request.user):
        return selected_tenant(request)
    return tenant_of(request.user)
