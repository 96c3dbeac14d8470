"""Who may see and change what: cluster admins see everything, members their tenant."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.models import Membership, Tenant

User = AbstractBaseUser | AnonymousUser


def is_cluster_admin(user: User | None) -> bool:
    """Cluster admins are Django staff or superusers (created by `createsuperuser`)."""
    return bool(
        user is not None
        and user.is_authenticated
        and (getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))
    )


def membership_of(user: User | None) -> Membership | None:
    """The user's membership, cached on the user object for the request."""
    if user is None or not user.is_authenticated:
        return None
    if not hasattr(user, "_ciao_membership"):
        user._ciao_membership = (
            Membership.objects.select_related("tenant").filter(user=user).first()
        )
    return user._ciao_membership


def tenant_of(user: User | None) -> Tenant | None:
    membership = membership_of(user)
    return membership.tenant if membership else None


def can_manage_members(user: User | None, tenant: Tenant) -> bool:
    """Cluster admins, and the tenant's own `admin` members."""
    if is_cluster_admin(user):
        return True
    membership = membership_of(user)
    return bool(
        membership and membership.tenant_id == tenant.id and membership.role == MembershipRole.ADMIN
    )
