from typing import Any

from django.apps import AppConfig

from ciaoweb.events.registry import register_live_type


def _lease_tenant(lease) -> Any:
    """The network's tenant; on a shared network (also one a tenant owns), the tenant of
    the attachment holding it: an owner sees no other tenant's leases, live or audited."""
    if lease.network.tenant_id and not lease.network.shared:
        return lease.network.tenant_id
    return lease.attachment.instance.tenant_id if lease.attachment_id else None


class NetworksConfig(AppConfig):
    name = "ciaoweb.networks"
    label = "networks"

    def ready(self) -> None:
        from ciaoweb.networks import checks  # noqa: F401 - registers the start-up checks

        # Serializers import models: only once the app registry is ready.
        from ciaoweb.networks.api.serializers import LeaseSerializer, NetworkSerializer

        register_live_type("lease", LeaseSerializer, tenant_of=_lease_tenant)
        # Represented, but no `network.updated` websocket message (DESIGN §3).
        register_live_type("network", NetworkSerializer, pushed=False)
