"""`/api/v1/auth/token/`: POST obtains the caller's token, DELETE revokes it.

Hardened (docs/security.md, "Authentication hardening"): the project's size-limited
parsers (413 past DATA_UPLOAD_MAX_MEMORY_SIZE, 400 for malformed or too deeply nested
JSON), sign-in throttling (429 with Retry-After, `ciaoweb.core.api.throttling`), and
tokens that expire (`CIAO_TOKEN_TTL`).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotAuthenticated, Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings

from ciaoweb.core.api.authentication import renew_or_issue
from ciaoweb.core.api.throttling import FailedSignInThrottle, SignInRateThrottle, retry_after


class AuthTokenView(ObtainAuthToken):
    """DRF's token view plus revocation: after `DELETE` the old token answers 401; the
    next `POST` with the password issues a new one. A token expires `CIAO_TOKEN_TTL`
    seconds after the last sign-in with the password; too many sign-ins are a 429."""

    # ObtainAuthToken names DRF's stock parsers (no size or depth limit): ours instead.
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES
    throttle_classes = [SignInRateThrottle]

    def get_throttles(self):
        # Only sign-ins are throttled; revoking one's own token (DELETE) is not.
        return super().get_throttles() if self.request.method == "POST" else []

    def post(self, request, *args, **kwargs):
        data = request.data  # parsed here: 400/413 before anything else
        username = data.get("username") if hasattr(data, "get") else None
        failures = FailedSignInThrottle(username)
        if not failures.allow_request(request, self):
            raise Throttled(wait=retry_after(failures))
        serializer = self.get_serializer(data=data)
        if not serializer.is_valid():
            failures.failed()
            raise ValidationError(serializer.errors)
        token = renew_or_issue(serializer.validated_data["user"])
        return Response({"token": token.key})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, *args, **kwargs):
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated()
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
