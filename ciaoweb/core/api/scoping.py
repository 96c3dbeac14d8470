"""Tenant scoping: ONE mixin every viewset uses.

A cluster admin sees everything. A member sees the objects whose `tenant_lookup` is its
tenant, plus what `shared_q()` adds (shared networks). Another tenant's object is simply
not in the queryset, so it answers 404. `admin_only = True` makes a collection 403 for
members; `admin_only_writes = True` lets members read but not change it.

`filter_choices(model, tenant_lookup)` scopes a filterset's ModelChoiceFilter the same
way, so another tenant's id in a filter is as unknown as a random one (the same 400).
"""

from collections.abc import Callable

from django.db.models import Q, QuerySet
from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied

from ciaoweb.tenancy.access import is_cluster_admin, tenant_of
from ciaoweb.tenancy.models import Tenant


class ClusterAdminPermission(permissions.BasePermission):
    """Applies a viewset's `admin_only` / `admin_only_writes` flags; actions listed in
    `member_actions` do their own finer check (e.g. tenant admins adding members)."""

    message = "only cluster administrators may do this"

    def has_permission(self, request, view) -> bool:
        if is_cluster_admin(request.user):
            return True
        if getattr(view, "action", None) in getattr(view, "member_actions", ()):
            return True
        if getattr(view, "admin_only", False):
            return False
        if getattr(view, "admin_only_writes", False) and not getattr(view, "detail", False):
            return request.method in permissions.SAFE_METHODS
        return True  # object writes: decided after the lookup, so foreign objects are 404

    def has_object_permission(self, request, view, obj) -> bool:
        if is_cluster_admin(request.user) or request.method in permissions.SAFE_METHODS:
            return True
        if getattr(view, "action", None) in getattr(view, "member_actions", ()):
            return True
        return not getattr(view, "admin_only_writes", False)


SharedQ = Callable[[Tenant | None], Q | None]


def scope(
    queryset: QuerySet, user, tenant_lookup: str | None, shared: SharedQ | None = None
) -> QuerySet:
    """`queryset` narrowed to what `user` may see: everything for a cluster admin; for a
    member, the rows whose `tenant_lookup` is its tenant plus what `shared(tenant)` adds."""
    if is_cluster_admin(user):
        return queryset
    tenant = tenant_of(user)
    if tenant is None or tenant_lookup is None:
        visible = Q(pk__in=[])
    else:
        visible = Q(**{tenant_lookup: tenant.pk})
    if shared is not None and (extra := shared(tenant)) is not None:
        visible |= extra
    return queryset.filter(visible).distinct()


def filter_choices(
    model, tenant_lookup: str | None, shared: SharedQ | None = None
) -> Callable[[object], QuerySet]:
    """A django-filter `queryset=` callable: the `model` rows the requesting user may
    see. Without a request (the schema generator) nothing is a valid choice."""

    def choices(request) -> QuerySet:
        queryset = model._default_manager.all()
        user = getattr(request, "user", None)
        if user is None:
            return queryset.none()
        return scope(queryset, user, tenant_lookup, shared)

    return choices


class TenantScopedMixin:
    """Filters `queryset` to what the requesting user may see."""

    tenant_lookup: str | None = "tenant"
    admin_only = False
    admin_only_writes = False
    member_actions: tuple[str, ...] = ()
    permission_classes = [permissions.IsAuthenticated, ClusterAdminPermission]

    def shared_q(self, tenant: Tenant | None) -> Q | None:
        """Extra objects a member may see (e.g. shared networks)."""
        return None

    def get_queryset(self) -> QuerySet:
        return scope(super().get_queryset(), self.request.user, self.tenant_lookup, self.shared_q)

    @property
    def is_admin(self) -> bool:
        return is_cluster_admin(self.request.user)

    def requesting_tenant(self) -> Tenant:
        """The tenant a member acts for; a user without a tenant may not create anything."""
        tenant = tenant_of(self.request.user)
        if tenant is None:
            raise PermissionDenied("your user belongs to no tenant")
        return tenant

    def deny_admin_only_fields(self, *fields: str) -> None:
        """Members setting an admin-only field get 403, like Nova's host targeting."""
        if self.is_admin:
            return
        data = self.request.data
        if not isinstance(data, dict):
            return  # the serializer answers 400 for a body that is not an object
        given = [f for f in fields if data.get(f) not in (None, "", False)]
        if given:
            raise PermissionDenied(f"only cluster administrators may set: {', '.join(given)}")
