"""Settings for a real deployment: `DJANGO_SETTINGS_MODULE=ciaoweb.settings_production`.

The API processes (daphne) sit behind a TLS reverse proxy that sets `X-Forwarded-Proto`
and `X-Forwarded-For` (deploy/nginx/ciaoweb.conf); PostgreSQL is the database, Redis the
broker and the Channels layer. Everything else is `ciaoweb.settings`, read from the same
environment (deploy/ciaoweb.env.example, docs/deploy.md).

What a development checkout makes up for itself is required here, and a value that is
missing or still the example's placeholder stops the process before it serves anything:
the secret key (the base settings would write a random one under var/, different on each
host of a multi-host controller), the control key, the allowed hosts and the database.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

# The example env file's values start so: copied unchanged, they are refused.
PLACEHOLDER = "change-me"
# Django's own test for a weak key (security.W009): shorter or fewer distinct characters.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
# An HMAC-SHA256 key: at least 128 bits of hex or base64.
CONTROL_KEY_MIN_LENGTH = 32
POSTGRES_ENGINES = ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis")


def required_key(name: str, min_length: int, min_unique: int = SECRET_KEY_MIN_UNIQUE) -> str:
    """The environment's `name`, refused when missing, a placeholder or weak."""
    value = os.environ.get(name, "")
    if not value.strip():
        raise ImproperlyConfigured(
            f"{name} is not set: production settings need a key of their own, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    if PLACEHOLDER in value.lower() or value.startswith("django-insecure-"):
        raise ImproperlyConfigured(f"{name} is still the example's placeholder: generate a key")
    if len(value) < min_length or len(set(value)) < min_unique:
        raise ImproperlyConfigured(
            f"{name} is too weak: at least {min_length} characters, {min_unique} different"
        )
    return value


def required_hosts() -> list[str]:
    hosts = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h.strip()]
    if not hosts:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS is not set: the names the proxy serves, e.g. ciao.example.com"
        )
    if "*" in hosts:
        # The websocket origin check (ciaoweb.events.origin) matches ALLOWED_HOSTS: "*"
        # would let any site's page open a socket with a user's session.
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS may not be '*': name the hosts")
    return hosts


# Allowed as Host for probes on a backend's own port; no browser's origin.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def trusted_origins(hosts: list[str]) -> list[str]:
    """https://<host> for each allowed host but the loopback ones (".example.com" →
    "https://*.example.com")."""
    return [
        f"https://*{h}" if h.startswith(".") else f"https://{h}"
        for h in hosts
        if h not in LOOPBACK_HOSTS
    ]


# Checked before the base settings run: without a key in the environment they would write
# one to var/secret_key, and a SQLite file without a DATABASE_URL.
_SECRET_KEY = required_key("DJANGO_SECRET_KEY", SECRET_KEY_MIN_LENGTH)
_CONTROL_KEY = required_key("CIAO_CONTROL_KEY", CONTROL_KEY_MIN_LENGTH)
_HOSTS = required_hosts()
if not os.environ.get("DATABASE_URL"):
    raise ImproperlyConfigured("DATABASE_URL is not set: postgres://USER:PASSWORD@HOST:5432/NAME")
if os.environ.get("CIAO_CHANNEL_LAYER", "").strip() == "memory":
    raise ImproperlyConfigured(
        "CIAO_CHANNEL_LAYER=memory reaches no other process: production uses Redis"
    )

from django.conf.global_settings import STORAGES  # noqa: E402

from ciaoweb.settings import *  # noqa: E402, F403
from ciaoweb.settings import CACHES, DATABASES, ENV, REST_FRAMEWORK  # noqa: E402

SECRET_KEY = _SECRET_KEY
CIAO_CONTROL_KEY = _CONTROL_KEY
DEBUG = False
ALLOWED_HOSTS = _HOSTS
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins or trusted_origins(_HOSTS)

if DATABASES["default"]["ENGINE"] not in POSTGRES_ENGINES:
    raise ImproperlyConfigured(
        f"DATABASE_URL names {DATABASES['default']['ENGINE']}: production runs on PostgreSQL"
    )

# TLS ends at the proxy, which says so in X-Forwarded-Proto (it overwrites what a client
# sent). Plain HTTP reaching Django is redirected, except the probes a load balancer or
# Prometheus sends straight to a backend's loopback port.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$", r"^metrics/?$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Start small (e.g. 300) on a first roll-out, then a year. includeSubDomains and preload
# cover the controller's own name and names below it: a subdomain like ciao.example.com
# cannot be put on browsers' preload list, only its registrable domain can.
SECURE_HSTS_SECONDS = ENV.hsts_seconds  # CIAO_HSTS_SECONDS
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

# The client address for sign-in throttling: the proxy's X-Forwarded-For, one proxy deep
# (the proxy overwrites the header, so the last entry is the address it saw), unless
# CIAO_NUM_PROXIES says otherwise.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "NUM_PROXIES": ENV.num_proxies if "CIAO_NUM_PROXIES" in os.environ else 1,
}

# Several API processes count sign-in failures together in CIAO_CACHE_URL's Redis; its
# keys carry this prefix, the only ones the `cache` broker user may touch (docs/deploy.md).
CACHE_KEY_PREFIX = "ciao-cache"
CACHES = {
    name: {**cache, "KEY_PREFIX": CACHE_KEY_PREFIX} if "Redis" in cache["BACKEND"] else cache
    for name, cache in CACHES.items()
}

# Static files: `manage.py collectstatic` once per release into STATIC_ROOT, served by
# whitenoise with hashed names (cached forever) and precompressed copies.
WHITENOISE_USE_FINDERS = False
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
