"""Django settings. Everything that differs between machines comes from the environment."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CIAO_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """A per-checkout random key kept under var/, unless the environment sets one."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get(
    "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver"
).split(",")
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "ciaoweb.core",
    "ciaoweb.tenancy",
    "ciaoweb.inventory",
    "ciaoweb.networks",
    "ciaoweb.instances",
    "ciaoweb.events",
    "ciaoweb.operations",
    "ciaoweb.orchestration",
    "ciaoweb.dashboard",
    "ciaoweb.localcluster",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ciaoweb.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "ciaoweb.wsgi.application"
ASGI_APPLICATION = "ciaoweb.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'ciaoweb.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent writers (server, controller worker) wait for each other instead of failing:
    # IMMEDIATE takes the write lock at BEGIN (a read lock upgraded later fails at once),
    # WAL lets readers go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
    # Created 0600, never with the umask's 0644: it holds password hashes and tokens.
    from ciaoweb.core.sqlite import private_database_files

    private_database_files(DATABASES["default"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Served straight from the app and static/ dirs: no collectstatic step before a demo.
WHITENOISE_USE_FINDERS = True

# Request bodies larger than this are refused: 413 from the API parsers (ciaoweb.core.api.parsers).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "ciaoweb.core.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "ciaoweb.core.api.parsers.JSONParser",
        "ciaoweb.core.api.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ciaoweb.core.api.exception_handler",
    # The client's address is REMOTE_ADDR; an X-Forwarded-For header is believed only
    # behind that many proxies of our own (else anyone could pick the address throttled).
    "NUM_PROXIES": int(os.environ.get("CIAO_NUM_PROXIES", "0")),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ciaoweb API",
    "DESCRIPTION": "SR-IOV network orchestrator",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: the dashboard works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets sharing a field name ("kind", "state") get readable enum names.
    "ENUM_NAME_OVERRIDES": {
        "NetworkKindEnum": "ciaoweb.networks.choices.NetworkKind.CHOICES",
        "InstanceKindEnum": "ciaoweb.instances.choices.InstanceKind.CHOICES",
        "OperationKindEnum": "ciaoweb.operations.choices.OperationKind.CHOICES",
        "OperationStateEnum": "ciaoweb.operations.choices.OperationState.CHOICES",
    },
}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": (
        {"BACKEND": "channels.layers.InMemoryChannelLayer"}
        if os.environ.get("CIAO_CHANNEL_LAYER") == "memory"
        else {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    )
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = "controller"
# The rest of the Celery settings are shared with the agents: ciaoweb.taskrouting.
# Disabled in unit tests, where no broker is running: tasks are then only recorded.
CIAO_DISPATCH = os.environ.get("CIAO_DISPATCH", "celery")

# VLAN ranges per physnet for automatic allocation, e.g. "physnet1:100:199,physnet2:200:299".
# A physnet not listed uses CIAO_VLAN_DEFAULT_RANGE.
CIAO_VLAN_RANGES = os.environ.get("CIAO_VLAN_RANGES", "")
CIAO_VLAN_DEFAULT_RANGE = os.environ.get("CIAO_VLAN_DEFAULT_RANGE", "100:3999")
# Both are checked at start-up (system check networks.E001, ciaoweb/networks/checks.py).
# Per-tenant quotas (docs/api.md, "Quotas"): the limits of a tenant an admin set none for.
# A value that is not a non-negative integer is kept as given and reported by the check
# tenancy.E001 (a clear start-up error, not a traceback here).


def _quota_default(name: str, default: str) -> int | str:
    raw = os.environ.get(name, default).strip()
    return int(raw) if raw.isdigit() else raw


CIAO_QUOTA_NETWORKS = _quota_default("CIAO_QUOTA_NETWORKS", "20")
CIAO_QUOTA_INSTANCES = _quota_default("CIAO_QUOTA_INSTANCES", "200")
CIAO_QUOTA_VFS = _quota_default("CIAO_QUOTA_VFS", "400")

# A host that has not sent a heartbeat for this many seconds is marked offline.
CIAO_HEARTBEAT_INTERVAL = float(os.environ.get("CIAO_HEARTBEAT_INTERVAL", "5"))
CIAO_HEARTBEAT_TIMEOUT = float(os.environ.get("CIAO_HEARTBEAT_TIMEOUT", "20"))
# The operations watchdog: a step with no progress for this long is sent again, and an
# operation whose step was sent CIAO_OPERATION_ATTEMPTS times fails with a reason.
CIAO_OPERATION_STEP_TIMEOUT = float(os.environ.get("CIAO_OPERATION_STEP_TIMEOUT", "30"))
CIAO_OPERATION_ATTEMPTS = int(os.environ.get("CIAO_OPERATION_ATTEMPTS", "3"))
# The key the web process and the controller worker sign their own messages with
# (ciaoweb.core.signing). Agents never see it: each has its host's own key.
CIAO_CONTROL_KEY = os.environ.get("CIAO_CONTROL_KEY", "")
CIAO_WATCHDOG_INTERVAL = float(os.environ.get("CIAO_WATCHDOG_INTERVAL", "5"))

# Authentication hardening (docs/security.md, "Authentication hardening").
# Sign-in throttling, for POST /api/v1/auth/token/ and the dashboard's /login/ (a 429 with
# Retry-After; "off" disables a limit): failed sign-ins per client address and username,
# and every sign-in request per client address.
CIAO_AUTH_THROTTLE = os.environ.get("CIAO_AUTH_THROTTLE", "10/min")
CIAO_AUTH_ADDRESS_THROTTLE = os.environ.get("CIAO_AUTH_ADDRESS_THROTTLE", "60/min")
# An API token answers 401 this many seconds after it was issued (or after the last
# sign-in with the password, which renews it).
CIAO_TOKEN_TTL = float(os.environ.get("CIAO_TOKEN_TTL", str(12 * 3600)))
# The throttles count in this cache: per process (locmem) unless CIAO_CACHE_URL names a
# Redis shared by every web process (needed when several serve the same site).
CIAO_CACHE_URL = os.environ.get("CIAO_CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CIAO_CACHE_URL}
        if CIAO_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CIAO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
