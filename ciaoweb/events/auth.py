"""Websocket authentication: the session cookie, or `?token=<api token>`.

A token must be valid (known, its user active, not expired: an expired one is deleted);
the scope then carries its digest and expiry, so the consumer can close the socket when
the token is revoked or expires."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _token_scope(key: str) -> dict:
    from ciaoweb.core.api.authentication import token_expires_at, valid_token
    from ciaoweb.events.revocation import token_digest

    # valid_token refuses e.g. a NUL byte before the database (PostgreSQL would fail).
    token = valid_token(key)
    if token is None:
        return {"user": AnonymousUser()}
    return {
        "user": token.user,
        "ciao_token_digest": token_digest(token.key),
        "ciao_token_expires": token_expires_at(token),
    }


class TokenQueryAuthMiddleware:
    """Authenticates `?token=` when present; otherwise the session decides."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode())
        if token := query.get("token", [None])[0]:
            scope = dict(scope, **await _token_scope(token))
        return await self.inner(scope, receive, send)


def EventsAuthStack(inner):  # noqa: N802 - mirrors Channels' AuthMiddlewareStack
    return AuthMiddlewareStack(TokenQueryAuthMiddleware(inner))
