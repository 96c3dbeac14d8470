"""ASGI entry point: HTTP through Django, websockets through each app's routes."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ciaoweb.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from ciaoweb.events.origin import browser_origin_validator  # noqa: E402
from ciaoweb.events.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": browser_origin_validator(URLRouter(websocket_urlpatterns)),
    }
)
