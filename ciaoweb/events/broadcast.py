"""Push live updates to websocket clients through the Channels layer.

One group per tenant and one for cluster admins. Callers pass the REST representation,
so websocket and REST clients see the same data.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)

ADMIN_GROUP = "ciao.admins"
MESSAGE_TYPES = ("lease.updated", "instance.updated", "attachment.updated", "host.updated")


def tenant_group(tenant_id: Any) -> str:
    return f"ciao.tenant.{tenant_id}"


def publish(message_type: str, tenant_id: Any, data: dict) -> None:
    """Send one message to the tenant's clients and to admins; never raises."""
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown websocket message type {message_type!r}")
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"type": "ciao.event", "message": {"type": message_type, "data": data}}
    groups = [ADMIN_GROUP] + ([tenant_group(tenant_id)] if tenant_id else [])
    try:
        for group in groups:
            async_to_sync(layer.group_send)(group, event)
    except Exception:  # a dead Redis must not fail the database change that caused this
        log.exception("websocket publish of %s failed", message_type)
