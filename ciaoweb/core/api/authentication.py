"""API authentication: DRF's token scheme, refusing malformed keys before the database.

A key with a NUL byte would reach PostgreSQL and fail there (DataError, a 500); a key is
40 hex digits (`rest_framework.authtoken.models.Token.generate_key`), anything else is
simply not a token.
"""

import re

from rest_framework import authentication, exceptions

TOKEN_KEY_RE = re.compile(r"[0-9a-f]{40}")


def is_token_key(key: str) -> bool:
    return bool(TOKEN_KEY_RE.fullmatch(key))


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        if not is_token_key(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
