"""Closing a user's open `/ws/events/` sockets when their access ends.

Every socket joins its user's group (`user_group`); a `ciao.close` message there closes
it with the code given: 4401 when the credentials it connected with are gone (token
revoked or expired, password changed, user deactivated), 4403 when the user lost its
tenant membership. A message naming a token (its digest: the key never goes through the
channel layer) closes only the sockets that authenticated with that token.
Sent after commit, like every broadcast; see `ciaoweb.tenancy.revocation` for who calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

from ciaoweb.events import broadcast

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def user_group(user_id: Any) -> str:
    return f"ciao.user.{user_id}"


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def close_sockets(user_id: Any, code: int, reason: str, token_key: str | None = None) -> None:
    """After the current transaction commits (at once outside one): close the user's
    sockets (only those of `token_key` when given). Never raises."""
    event = {
        "type": "ciao.close",
        "code": code,
        "reason": reason,
        "token": token_digest(token_key) if token_key else None,
    }
    transaction.on_commit(lambda: _send(user_group(user_id), event))


def _send(group: str, event: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if isinstance(layer, InMemoryChannelLayer):  # its queues live on the caller's loop
            async_to_sync(layer.group_send)(group, event)
        else:  # the long-lived sending loop of this process (see ciaoweb.events.broadcast)
            future = asyncio.run_coroutine_threadsafe(
                layer.group_send(group, event), broadcast._loop(os.getpid())
            )
            future.result(broadcast.SEND_TIMEOUT_SECONDS)
    except Exception:  # a dead Redis must not fail the change that caused this
        log.exception("closing the websockets of %s failed", group)
