"""Sign-in throttling: `POST /api/v1/auth/token/` and the dashboard's `/login/`.

Two limits, both counted in Django's default cache (`CACHES`, see settings):

- `CIAO_AUTH_ADDRESS_THROTTLE` (default 60/min): every sign-in request from one client
  address, right or wrong, malformed or not: each costs a password hash.
- `CIAO_AUTH_THROTTLE` (default 10/min): failed sign-ins per client address and username,
  the brute-force limit. Only failures count, so a script that signs in often with the
  right password is not refused.

Past a limit the answer is a 429 with `Retry-After`. The rates are read from settings
when a request arrives (DRF's `SimpleRateThrottle.THROTTLE_RATES` is read once, at
import); "off" (or empty) disables a limit. The client address is DRF's `get_ident`:
REMOTE_ADDR, X-Forwarded-For only behind `CIAO_NUM_PROXIES` proxies.
"""

from __future__ import annotations

import hashlib
import math

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from ciaoweb.core.envconfig import THROTTLE_OFF as OFF


def _rate(name: str) -> str | None:
    rate = str(getattr(settings, name, "") or "").strip()
    return None if rate.lower() in OFF else rate


class SignInRateThrottle(SimpleRateThrottle):
    """Every sign-in request, per client address (a DRF throttle class)."""

    scope = "signin"
    rate_setting = "CIAO_AUTH_ADDRESS_THROTTLE"

    def get_rate(self):
        return _rate(self.rate_setting)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class FailedSignInThrottle(SignInRateThrottle):
    """Failed sign-ins per client address and username. `allow_request` only looks;
    `failed()` records one failure (after the password was refused)."""

    scope = "signin-failed"
    rate_setting = "CIAO_AUTH_THROTTLE"

    def __init__(self, username) -> None:
        super().__init__()
        self.username = username if isinstance(username, str) else ""

    def get_cache_key(self, request, view):
        # Hashed: a username is any 150 characters, a cache key must stay short and plain.
        name = hashlib.sha256(self.username.encode("utf-8", "replace")).hexdigest()[:32]
        ident = f"{self.get_ident(request)}:{name}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def throttle_success(self):
        return True  # looking is not a failure

    def failed(self) -> None:
        if getattr(self, "key", None) is None:  # disabled, or no address to count
            return
        self.history.insert(0, self.timer())
        self.cache.set(self.key, self.history, self.duration)


def check_sign_in(request, username) -> tuple[FailedSignInThrottle, int | None]:
    """For a sign-in view that is not a DRF view (the dashboard's login): both limits.
    Returns the failure counter (call `failed()` on a refused password) and, when a limit
    is reached, the seconds to wait (for Retry-After), else None."""
    failures = FailedSignInThrottle(username)
    for throttle in (SignInRateThrottle(), failures):
        if not throttle.allow_request(request, None):
            return failures, retry_after(throttle)
    return failures, None


def retry_after(throttle: SimpleRateThrottle) -> int:
    wait = throttle.wait()
    return max(1, math.ceil(wait)) if wait is not None else 1
