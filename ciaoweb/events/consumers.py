"""`/ws/events/`: live lease, instance, attachment, host and operation updates, per tenant
(the types the apps register in `ciaoweb.events.registry`)."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .broadcast import ADMIN_GROUP, tenant_group


@database_sync_to_async
def _groups_for(user) -> list[str]:
    from ciaoweb.tenancy.access import is_cluster_admin, tenant_of

    if is_cluster_admin(user):
        return [ADMIN_GROUP]
    tenant = tenant_of(user)
    return [tenant_group(tenant.id)] if tenant else []


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Clients only listen; what they receive is decided by their tenant at connect."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.groups_joined = await _groups_for(user)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """Nothing to receive; a ping gets a pong so clients can check liveness."""
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def ciao_event(self, event: dict) -> None:
        await self.send_json(event["message"])
