"""Domain errors that map onto HTTP answers (see core.api.exceptions)."""

from rest_framework import status
from rest_framework.exceptions import APIException


class NoCapacity(APIException):
    """No VF, IP, VLAN or host is left for the request: the client may retry later."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "no_capacity"

    def __init__(self, what: str):
        super().__init__(f"no capacity: {what}")


class Conflict(APIException):
    """The request is valid but clashes with the current state (e.g. network in use)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
