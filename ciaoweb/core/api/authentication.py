"""API authentication: DRF's token scheme, refusing malformed keys before the database,
and expired tokens.

A key with a NUL byte would reach PostgreSQL and fail there (DataError, a 500); a key is
40 hex digits (`rest_framework.authtoken.models.Token.generate_key`), anything else is
simply not a token.

A token lives `CIAO_TOKEN_TTL` seconds from its `created` time (set when it is issued,
and again at every sign-in with the password: `renew_or_issue`). An expired token is
deleted when next presented and answers 401; so does the token of an inactive user.
Tokens are also revoked on a password change and on deactivation
(`ciaoweb.tenancy.revocation`).
"""

from __future__ import annotations

import datetime
import re

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

TOKEN_KEY_RE = re.compile(r"[0-9a-f]{40}")
EXPIRED_MESSAGE = "Token has expired; obtain a new one with POST /api/v1/auth/token/."


def is_token_key(key: str) -> bool:
    return bool(TOKEN_KEY_RE.fullmatch(key))


def token_expires_at(token: Token) -> datetime.datetime:
    return token.created + datetime.timedelta(seconds=settings.CIAO_TOKEN_TTL)


def token_expired(token: Token) -> bool:
    return timezone.now() >= token_expires_at(token)


def valid_token(key: str) -> Token | None:
    """The token with this key, its user active and the token not expired, else None (an
    expired token is deleted). For the websocket, which has no DRF request."""
    if not is_token_key(key):
        return None
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    if token_expired(token):
        token.delete()
        return None
    return token


def renew_or_issue(user) -> Token:
    """At a sign-in with the password: the user's token with its lifetime started again,
    or a new one when it had expired (a token holder cannot renew without the password)."""
    token, created = Token.objects.get_or_create(user=user)  # two at once: one token
    if created:
        return token
    if token_expired(token):
        token.delete()
        return Token.objects.get_or_create(user=user)[0]
    token.created = timezone.now()
    Token.objects.filter(pk=token.pk).update(created=token.created)
    return token


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        if not is_token_key(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        user, token = super().authenticate_credentials(key)  # unknown, inactive: 401
        if token_expired(token):
            token.delete()
            raise exceptions.AuthenticationFailed(EXPIRED_MESSAGE)
        return user, token
