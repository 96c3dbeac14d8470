"""Per-tenant quotas: how many networks, instances and VFs a tenant may hold.

- `networks`: the tenant's own networks except its primary overlay `default` (made with
  the tenant, never refused); shared networks belong to no tenant and count for none.
- `instances`: the tenant's instances, in any state (a `deleting` one holds its VFs and
  addresses until its agent released them, so it counts until its row is gone).
- `vfs`: the VFs the tenant's instances hold, one per attachment on an SR-IOV network.

A tenant's limit is its own (`quota_<name>`, set by `PUT tenants/{id}/quota/`) or, while
none was set, the setting `CIAO_QUOTA_<NAME>`.

`check_quota(tenant, networks=1)` is called by every path that creates something counted
(networks.services.create_network, instances.services.create_instance, and the hot-plug
attach to come for `vfs`) inside its transaction, before it creates anything: it locks
the tenant's row, counts, and raises Conflict (409) naming the quota, the limit and the
use. The lock is held until the caller commits, so two creations for one tenant cannot
both see the last free unit; the caller's rollback leaves nothing behind.

The lock is FOR NO KEY UPDATE: it serializes the quota holders of one tenant but not the
foreign-key checks (FOR KEY SHARE) of rows that reference the tenant (events, networks,
instances), so a transaction that records an event while holding a network's row lock
never waits for it. It is taken before any other row lock of a creation (tenant, then
networks, hosts, VFs); deleting a tenant locks the tenant first too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from ciaoweb.core.exceptions import Conflict
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.networks.choices import NetworkKind
from ciaoweb.networks.models import Network
from ciaoweb.tenancy.models import Tenant

QUOTAS = ("networks", "instances", "vfs")
SETTINGS = {name: f"CIAO_QUOTA_{name.upper()}" for name in QUOTAS}
# Beyond any real cluster; keeps a PUT inside the column's range (400, not a 500).
QUOTA_MAX = 1_000_000


def default_limit(name: str) -> int:
    """The setting's value; the start-up check (tenancy.E001) reports a bad one, which a
    request that still meets it answers with a 409 naming it, never a 500."""
    value = getattr(settings, SETTINGS[name], None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Conflict(
            f"the {name} quota cannot be checked: {SETTINGS[name]} is misconfigured "
            f"({value!r} is not a non-negative integer); an administrator must fix the setting"
        )
    return value


def limits(tenant: Tenant) -> dict[str, int]:
    """The tenant's limits: its own, or the settings' defaults."""
    own = {name: getattr(tenant, f"quota_{name}") for name in QUOTAS}
    return {name: default_limit(name) if value is None else value for name, value in own.items()}


def _count(name: str, tenant_id: Any) -> int:
    if name == "networks":
        return Network.objects.filter(tenant_id=tenant_id, is_primary=False).count()
    if name == "instances":
        return Instance.objects.filter(tenant_id=tenant_id).count()
    return Attachment.objects.filter(
        instance__tenant_id=tenant_id, network__kind=NetworkKind.SRIOV
    ).count()


def usage(tenant: Tenant) -> dict[str, int]:
    """What the tenant holds now, per quota."""
    return {name: _count(name, tenant.pk) for name in QUOTAS}


def quota_of(tenant: Tenant) -> dict[str, Any]:
    """The representation of `GET tenants/{id}/quota/`: limits and `used`."""
    return {**limits(tenant), "used": usage(tenant)}


def lock_tenant(tenant: Tenant | Any) -> Tenant:
    """The tenant's row, locked until the caller's transaction ends (see the module doc)."""
    pk = getattr(tenant, "pk", tenant)
    locked = Tenant.objects.select_for_update(no_key=True).filter(pk=pk).first()
    if locked is None:  # deleted by a concurrent request
        raise Conflict("the tenant no longer exists")
    return locked


def check_quota(tenant: Tenant, **wanted: int) -> Tenant:
    """Refuse (Conflict) a creation that would take the tenant past a quota; `wanted`
    is how many of each quota it needs (`networks=1`, `instances=1, vfs=2`). Must run
    inside the creating transaction, before anything is created. Returns the locked
    tenant row."""
    unknown = set(wanted) - set(QUOTAS)
    if unknown:
        raise ValueError(f"unknown quotas: {sorted(unknown)}")
    locked = lock_tenant(tenant)
    allowed = limits(locked)
    for name in QUOTAS:
        needed = wanted.get(name, 0)
        if needed <= 0:
            continue
        used = _count(name, locked.pk)
        if used + needed > allowed[name]:
            message = f"quota exceeded: {name} limit {allowed[name]}, in use {used}"
            if needed > 1:
                message += f", this request needs {needed}"
            raise Conflict(f"{message} (tenant {locked.name})")
    return locked


@transaction.atomic
def set_quota(tenant: Tenant, changes: dict[str, int]) -> Tenant:
    """Set some of the tenant's limits (validated: integers 0..QUOTA_MAX) and record a
    `tenant.quota_changed` event. A limit below the current use is allowed: nothing is
    taken away, the next creation is refused."""
    locked = lock_tenant(tenant)
    before = limits(locked)
    for name, value in changes.items():
        if name not in QUOTAS:
            raise ValueError(f"unknown quota {name!r}")
        setattr(locked, f"quota_{name}", value)
    locked.save(update_fields=[f"quota_{name}" for name in changes] + ["updated"])
    after = limits(locked)
    changed = {n: [before[n], after[n]] for n in QUOTAS if before[n] != after[n]}
    text = ", ".join(f"{n} {old} -> {new}" for n, (old, new) in changed.items()) or "unchanged"
    record(
        EventKind.TENANT_QUOTA_CHANGED,
        locked,
        f"quota of tenant {locked}: {text}",
        data={"before": before, "after": after},
    )
    return locked
