from django.urls import path

from .auth import EventsAuthStack
from .consumers import EventsConsumer

websocket_urlpatterns = [
    path("ws/events/", EventsAuthStack(EventsConsumer.as_asgi())),
]
