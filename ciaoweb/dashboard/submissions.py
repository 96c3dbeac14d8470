"""A write form acts once: each rendered form carries a one-time token (`{% form_token %}`)
and its view is wrapped in `submitted_once`, which claims the token before acting.

The same form posted again (a double click that got past the page's script, a resent
POST, a reload after a submit) does nothing a second time: it is sent where the first
post went (the instance it created, ...) with a message saying so. Claims live in the
cache (`cache.add` is atomic), like the sign-in throttles: per process unless
CIAO_CACHE_URL names a Redis that every web process shares.

A POST without a token (scripts, the tests' clients) is served as before; the API's own
rules (unique names, one operation at a time) still answer a repeat with a 4xx.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import reverse

FIELD = "form_token"
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
# How long a claim is remembered: a form left open longer may be sent once more.
TTL_SECONDS = 3600
IN_FLIGHT = ""  # claimed, the first post not answered yet
ALREADY_SENT = "This form was already submitted; it was not sent a second time."


def new_token() -> str:
    return secrets.token_urlsafe(16)


def _key(request: HttpRequest, token: str) -> str:
    return f"ciao:dashboard:form:{request.user.pk}:{token}"


def submitted_once(fallback: str, *url_kwargs: str) -> Callable:
    """Decorate a view that acts on a POST. A repeat of an answered post is redirected to
    that answer; a repeat while the first is still running goes to the `fallback` URL
    name (reversed with the view's `url_kwargs`). A post answered with a form to correct
    (not a redirect) releases its token."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            token = request.POST.get(FIELD, "") if request.method == "POST" else ""
            if not token:
                return view(request, *args, **kwargs)
            if not TOKEN.fullmatch(token):
                return HttpResponseBadRequest(
                    "This form's token is malformed: reload the page and submit it again.",
                    content_type="text/plain",
                )
            key = _key(request, token)
            if not cache.add(key, IN_FLIGHT, TTL_SECONDS):
                messages.info(request, ALREADY_SENT)
                earlier = cache.get(key)
                if earlier:
                    return redirect(earlier)
                return redirect(reverse(fallback, kwargs={k: kwargs[k] for k in url_kwargs}))
            try:
                response = view(request, *args, **kwargs)
            except Exception:
                cache.delete(key)  # nothing was done (a 404, a 403): the form may be sent again
                raise
            if response.status_code in (301, 302, 303):
                cache.set(key, response["Location"], TTL_SECONDS)
            else:
                cache.delete(key)
            return response

        return guarded

    return decorate
