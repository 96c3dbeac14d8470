"""`/api/v1/auth/token/`: POST obtains the caller's token, DELETE revokes it."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotAuthenticated
from rest_framework.response import Response


class AuthTokenView(ObtainAuthToken):
    """DRF's token view plus revocation: after `DELETE` the old token answers 401; the
    next `POST` with the password issues a new one."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, *args, **kwargs):
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated()
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
