"""`/api/v1/auth/token/`: POST obtains the caller's token, DELETE revokes it.

Hardened (docs/security.md, "Authentication hardening"): the project's size-limited
parsers (413 past DATA_UPLOAD_MAX_MEMORY_SIZE, 400 for malformed or too deeply nested
JSON), sign-in throttling (429 with Retry-After, `ciaoweb.core.api.throttling`), and
tokens that expire (`CIAO_TOKEN_TTL`).
"""

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotAuthenticated, Throttled, ValidationError
from rest_framework.response import Response

from ciaoweb.core.api.authentication import renew_or_issue
from ciaoweb.core.api.parsers import FormParser, JSONParser
from ciaoweb.core.api.throttling import FailedSignInThrottle, SignInRateThrottle, retry_after


class AuthTokenView(ObtainAuthToken):
    """DRF's token view plus revocation: after `DELETE` the old token answers 401; the
    next `POST` with the password issues a new one. A token expires `CIAO_TOKEN_TTL`
    seconds after the last sign-in with the password; too many sign-ins are a 429."""

    # ObtainAuthToken names DRF's stock parsers (no size or depth limit): ours instead.
    # Besides JSON (the one the schema documents), the classic form post of a sign-in
    # (`curl -d username=...`) is taken here; the rest of the API parses JSON only.
    parser_classes = [JSONParser, FormParser]
    throttle_classes = [SignInRateThrottle]

    def get_throttles(self):
        # Only sign-ins are throttled; revoking one's own token (DELETE) is not.
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        operation_id="auth_token_obtain",
        summary="Obtain a token",
        auth=[],  # no credentials needed to sign in
        description=(
            "Signs in with a username and password and answers the user's token, to send as "
            "`Authorization: Token <token>`. Each sign-in with the password renews the "
            "token's lifetime (`CIAO_TOKEN_TTL`, 12 h by default); wrong credentials are a "
            "400. Sign-ins are throttled per client address, and failed ones per address "
            "and username: 429 with `Retry-After`."
        ),
        request=inline_serializer(
            "SignIn",
            {
                "username": serializers.CharField(help_text="the user's login name"),
                "password": serializers.CharField(write_only=True, help_text="the user's password"),
            },
        ),
        responses=inline_serializer(
            "Token",
            {"token": serializers.CharField(help_text="40 hexadecimal digits")},
        ),
        examples=[
            OpenApiExample(
                "Sign in",
                value={"username": "alice", "password": "s3cret-alice"},
                request_only=True,
            ),
            OpenApiExample(
                "The token",
                value={"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"},
                response_only=True,
            ),
        ],
    )
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

    @extend_schema(
        operation_id="auth_token_revoke",
        summary="Revoke the token",
        description=(
            "Deletes the caller's token: requests with it are 401 from now on, and the next "
            "sign-in issues a new one."
        ),
        request=None,
        responses={204: None},
    )
    def delete(self, request, *args, **kwargs):
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated()
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
