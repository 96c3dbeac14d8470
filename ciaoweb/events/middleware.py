"""A request's websocket pushes go out when its view is done (`deferred_pushes`): the
work its commits queued for the controller (an operation to advance) goes first."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from .services import deferred_pushes


class DeferredPushesMiddleware:
    """Sync only: the view, its commits and their pushes run in one thread."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        with deferred_pushes():
            return self.get_response(request)
