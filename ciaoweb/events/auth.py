"""Websocket authentication: the session cookie, or `?token=<api token>`."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    from ciaoweb.core.api.authentication import is_token_key

    if not is_token_key(key):  # e.g. a NUL byte, which PostgreSQL would refuse with an error
        return AnonymousUser()
    try:
        return Token.objects.select_related("user").get(key=key).user
    except Token.DoesNotExist:
        return AnonymousUser()


class TokenQueryAuthMiddleware:
    """Authenticates `?token=` when present; otherwise the session decides."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode())
        if token := query.get("token", [None])[0]:
            scope = dict(scope, user=await _user_for_token(token))
        return await self.inner(scope, receive, send)


def EventsAuthStack(inner):  # noqa: N802 - mirrors Channels' AuthMiddlewareStack
    return AuthMiddlewareStack(TokenQueryAuthMiddleware(inner))
