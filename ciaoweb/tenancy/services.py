"""Tenants are created with their primary overlay network; members are users."""

from django.contrib.auth import get_user_model
from django.db import transaction

from ciaoweb.core.exceptions import Conflict, InvalidInput
from ciaoweb.core.locks import retried_on_deadlock
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.instances.models import Instance
from ciaoweb.networks.models import Network
from ciaoweb.networks.services import create_primary_network, delete_network
from ciaoweb.orchestration.dhcp import lock_servers_of
from ciaoweb.tenancy.models import Membership, Tenant
from ciaoweb.tenancy.quotas import lock_tenant


@transaction.atomic
def create_tenant(name: str) -> Tenant:
    """A tenant always comes with its overlay network `default`."""
    tenant = Tenant.objects.create(name=name)
    create_primary_network(tenant)
    record(EventKind.TENANT_CREATED, tenant, f"tenant {tenant} created")
    return tenant


def username_taken(username: str) -> InvalidInput:
    """What a tenant admin hears for any existing user outside its tenant: the same words
    for another tenant's member, a user of no tenant and a cluster administrator, so the
    answer says nothing of where the user belongs (usernames are global: that the name is
    taken cannot be hidden, as in any sign-up)."""
    return InvalidInput({"username": [f"the username {username} is taken: choose another"]})


@retried_on_deadlock
@transaction.atomic
def delete_tenant(tenant: Tenant) -> None:
    """Refused (409) while the tenant has instances (in any state: a deleting one still
    holds its VFs). Otherwise each of its networks, the primary overlay included, is
    deleted through `delete_network`, so each one's DHCP server is removed and its VF
    reset exactly as when the network is deleted alone; then the tenant row goes.

    Lock order as every creation (ciaoweb.tenancy.quotas): the tenant's row first, then
    its networks' DHCP server rows (`lock_servers_of`), then the networks in id order (as
    `delete_network` and the lease-event handler lock them before their leases; the
    cascade alone deleted leases first and deadlocked)."""
    # FOR NO KEY UPDATE, like the quota holders: a plain FOR UPDATE here also blocked the
    # foreign-key checks (KEY SHARE) of a lease event that had locked one of these
    # networks and was recording its event, while we waited for that network: a
    # deadlock seen in CI. The row's DELETE at the end takes the full lock.
    lock_tenant(tenant)
    if count := Instance.objects.filter(tenant=tenant).count():
        raise Conflict(f"tenant {tenant} is in use by {count} instance(s): delete them first")
    lock_servers_of(Network.objects.filter(tenant=tenant).values("pk"))  # before the networks
    for network in list(Network.objects.select_for_update().filter(tenant=tenant).order_by("pk")):
        delete_network(network, with_tenant=True)  # 409 if another tenant's instance uses it
    record(EventKind.TENANT_DELETED, tenant, f"tenant {tenant} deleted", tenant=None)
    tenant.delete()


@transaction.atomic
def add_member(
    tenant: Tenant,
    username: str,
    password: str | None,
    role: str,
    *,
    by_cluster_admin: bool = True,
) -> Membership:
    """Create the user if needed (a password is then required) and put it in the tenant.
    A user belongs to one tenant: adding it to a second one is refused (InvalidInput).
    Re-adding a member changes its role. A tenant admin (`by_cluster_admin=False`) only
    creates users or changes its own members' roles: any other existing user is refused
    with `username_taken`, which reveals nothing of that user's tenant or role."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is not None and not by_cluster_admin:
        if not Membership.objects.filter(user=user, tenant=tenant).exists():
            raise username_taken(username)
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
