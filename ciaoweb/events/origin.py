"""Websocket origin check that protects browsers without shutting out API clients.

Cross-site websocket hijacking needs a browser, and browsers always send `Origin`: a
handshake with an Origin must match ALLOWED_HOSTS. A handshake without one comes from a
script (e.g. `?token=` clients), which no other site can make a browser send.
"""

from channels.security.websocket import OriginValidator
from django.conf import settings


class BrowserOriginValidator(OriginValidator):
    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


def browser_origin_validator(application):
    allowed = [host for host in settings.ALLOWED_HOSTS if host]
    if settings.DEBUG and not allowed:
        allowed = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed)
