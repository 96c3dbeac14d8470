"""`/ws/events/`: live lease, instance, attachment, host and operation updates, per tenant
(the types the apps register in `ciaoweb.events.registry`)."""

from __future__ import annotations

import asyncio

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from .broadcast import ADMIN_GROUP, tenant_group
from .revocation import CLOSE_UNAUTHENTICATED, user_group

MAX_SLEEP = 30 * 24 * 3600.0  # a huge CIAO_TOKEN_TTL must not overflow the loop's timer
# Layer messages whose handlers touch no database (see EventsConsumer.dispatch).
WITHOUT_DATABASE = frozenset({"ciao.event", "ciao.close"})


@database_sync_to_async
def _groups_for(user) -> list[str]:
    from ciaoweb.tenancy.access import is_cluster_admin, tenant_of

    if is_cluster_admin(user):
        return [ADMIN_GROUP]
    tenant = tenant_of(user)
    return [tenant_group(tenant.id)] if tenant else []


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Clients only listen; what they receive is decided by their tenant at connect.

    A socket also joins its user's group, where `ciao.close` messages end it when its
    access ends (`ciaoweb.events.revocation`): its token revoked, the password changed,
    the user deactivated (4401) or removed from its tenant (4403). A socket opened with a
    token closes (4401) when that token expires."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        # The user's group first: a membership removed while the groups are looked up
        # still reaches this socket.
        self.groups_joined = [user_group(user.pk)]
        await self.channel_layer.group_add(self.groups_joined[0], self.channel_name)
        for group in await _groups_for(user):
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        await self.accept()
        if expires := self.scope.get("ciao_token_expires"):
            self.expiry = asyncio.create_task(self._close_at(expires))

    async def _close_at(self, expires) -> None:
        while (remaining := (expires - timezone.now()).total_seconds()) > 0:
            await asyncio.sleep(min(remaining, MAX_SLEEP))
        await self.close(code=CLOSE_UNAUTHENTICATED, reason="token expired")

    async def disconnect(self, code: int) -> None:
        if expiry := getattr(self, "expiry", None):
            expiry.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before every handler, in the one
        # thread that runs the process' sync code (its requests too): each pushed event
        # would queue behind whatever request holds it. These handlers only send.
        if message["type"] in WITHOUT_DATABASE:
            await getattr(self, get_handler_name(message))(message)
        else:
            await super().dispatch(message)

    async def receive_json(self, content, **kwargs) -> None:
        """Nothing to receive; a ping gets a pong so clients can check liveness."""
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def ciao_event(self, event: dict) -> None:
        await self.send_json(event["message"])

    async def ciao_close(self, event: dict) -> None:
        """The user's access ended (or, naming a token, that token's)."""
        if event.get("token") and event["token"] != self.scope.get("ciao_token_digest"):
            return  # another token of the user's, or this socket used the session
        if not getattr(self, "closing", False):  # e.g. a password change: two messages
            self.closing = True
            await self.close(code=event["code"], reason=event.get("reason"))
