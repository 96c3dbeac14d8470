"""Request latency: every request through Django, timed from this middleware down.

The route label is the name of the URL pattern that matched (`instance-detail`,
`dashboard:hosts`), never the path, which carries ids. Static files (WhiteNoise, above
this middleware) are not counted.
"""

from __future__ import annotations

import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from .metrics import observe_request


def _route(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else None


class RequestMetricsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        start = time.perf_counter()
        response = self.get_response(request)
        self._observe(request, response, start)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = await self.get_response(request)
        self._observe(request, response, start)
        return response

    @staticmethod
    def _observe(request: HttpRequest, response: HttpResponseBase, start: float) -> None:
        observe_request(
            request.method or "", _route(request), response.status_code, time.perf_counter() - start
        )
