"""Tenants are created with their primary overlay network; members are users."""

from django.contrib.auth import get_user_model
from django.db import transaction

from ciaoweb.core.exceptions import InvalidInput
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.networks.services import create_primary_network
from ciaoweb.tenancy.models import Membership, Tenant


@transaction.atomic
def create_tenant(name: str) -> Tenant:
    """A tenant always comes with its overlay network `default`."""
    tenant = Tenant.objects.create(name=name)
    create_primary_network(tenant)
    record(EventKind.TENANT_CREATED, tenant, f"tenant {tenant} created")
    return tenant


@transaction.atomic
def add_member(tenant: Tenant, username: str, password: str | None, role: str) -> Membership:
    """Create the user if needed (a password is then required) and put it in the tenant.
    A user belongs to one tenant: adding it to a second one is refused (InvalidInput).
    Re-adding a member changes its role."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        if not password:
            raise InvalidInput({"password": ["required to create a new user"]})
        user = User.objects.create_user(username=username, password=password)
    elif user.is_staff or user.is_superuser:
        raise InvalidInput({"username": [f"{username} is a cluster administrator"]})
    # An existing user's password is never changed here: a tenant admin must not be able
    # to take over accounts by "adding" them.
    existing = Membership.objects.select_for_update().filter(user=user).first()
    if existing and existing.tenant_id != tenant.id:
        raise InvalidInput(
            {"username": [f"{username} already belongs to tenant {existing.tenant}"]}
        )
    membership, _ = Membership.objects.update_or_create(
        user=user, defaults={"tenant": tenant, "role": role}
    )
    record(EventKind.TENANT_UPDATED, tenant, f"{username} is now {role} of tenant {tenant}")
    return membership
