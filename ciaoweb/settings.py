"""Django settings. Everything that differs between machines comes from the environment.

Every variable is read once, validated, by ciaoweb.core.envconfig (a bad value stops the
process with a line naming it); docs/configuration.md lists them all.
"""

from pathlib import Path

import dj_database_url

from ciaoweb.core.envconfig import environment_or_exit

ENV = environment_or_exit()
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(ENV.var_dir or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """A per-checkout random key kept under var/, unless the environment sets one."""
    if key := ENV.secret_key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import secrets

        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = ENV.debug
ALLOWED_HOSTS = ENV.allowed_hosts
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins

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
    # Request latency per route (ciaoweb.observability): everything below it, not static.
    "ciaoweb.observability.middleware.RequestMetricsMiddleware",
    "ciaoweb.events.middleware.DeferredPushesMiddleware",
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
        ENV.database_url or f"sqlite:///{VAR_DIR / 'ciaoweb.sqlite3'}",
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
if ENV.database_pool_size and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The API processes (deploy/web.env): daphne answers each request on a thread of its
    # own, so no persistent connection outlives a request, and each request connected anew
    # (about 4 ms, and a PostgreSQL backend forked). A request finding every connection in
    # use waits for one. Never in a Celery worker: its forked children would share the
    # parent's sockets (ciaoweb.celery refuses to start with one).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, ENV.database_pool_size),
        "max_size": ENV.database_pool_size,
        "timeout": 30.0,
    }
    # Each connection checked as it is lent: one dropped while idle is replaced.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
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
    # The API speaks JSON only (the dashboard's writes are internal JSON requests too);
    # the token endpoint alone also takes a form post (ciaoweb.tenancy.api.auth).
    "DEFAULT_PARSER_CLASSES": ["ciaoweb.core.api.parsers.JSONParser"],
    # limit/offset (at most 1000 rows) or page numbers; docs/api.md "Filtering, ..."
    "DEFAULT_PAGINATION_CLASS": "ciaoweb.core.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "ciaoweb.core.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "ciaoweb.core.api.exception_handler",
    # The client's address is REMOTE_ADDR; an X-Forwarded-For header is believed only
    # behind that many proxies of our own (else anyone could pick the address throttled).
    "NUM_PROXIES": ENV.num_proxies,
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
    # Operation ids and tags start after it (`networks_list`, tag `networks`) whatever
    # other URLs the project mounts.
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Request bodies are documented as JSON only (what the API parses; docs/api.md).
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    # Every choice set gets a readable enum name, never a numbered one (`State7bdEnum`)
    # when two share a field name ("kind", "state").
    "ENUM_NAME_OVERRIDES": {
        "NetworkKindEnum": "ciaoweb.networks.choices.NetworkKind.CHOICES",
        "IpamEnum": "ciaoweb.networks.choices.Ipam.CHOICES",
        "LeaseStateEnum": "ciaoweb.networks.choices.LeaseState.CHOICES",
        "InstanceKindEnum": "ciaoweb.instances.choices.InstanceKind.CHOICES",
        "InstanceStateEnum": "ciaoweb.instances.choices.InstanceState.CHOICES",
        "IpSourceEnum": "ciaoweb.instances.choices.IpSource.CHOICES",
        "AttachmentStateEnum": "ciaoweb.instances.choices.AttachmentState.CHOICES",
        "HostStateEnum": "ciaoweb.inventory.choices.HostState.CHOICES",
        "VirtualFunctionStateEnum": "ciaoweb.inventory.choices.VfState.CHOICES",
        "OperationKindEnum": "ciaoweb.operations.choices.OperationKind.CHOICES",
        "OperationStateEnum": "ciaoweb.operations.choices.OperationState.CHOICES",
        "OperationStepEnum": "ciaoweb.operations.choices.Step.CHOICES",
        "MembershipRoleEnum": "ciaoweb.tenancy.choices.MembershipRole.CHOICES",
        "DhcpServerStateEnum": "ciaoweb.orchestration.choices.DhcpServerState.CHOICES",
    },
}

REDIS_URL = ENV.redis_url
CHANNEL_LAYERS = {
    "default": (
        {"BACKEND": "channels.layers.InMemoryChannelLayer"}
        if ENV.channel_layer == "memory"
        else {
            # Redis Pub/Sub: a push is one PUBLISH per group and reaches each API process
            # once; the sorted-set layer (channels_redis.core) ran Lua scripts and a
            # BZPOPMIN per message and per client, and kept group membership in keys that
            # a restarted Redis (no persistence) forgot, so open sockets went silent.
            # Pushes are live updates: a client that was not connected reads the API.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    )
}

CELERY_BROKER_URL = ENV.celery_broker_url or REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = "controller"
# The rest of the Celery settings are shared with the agents: ciaoweb.taskrouting.
# Disabled in unit tests, where no broker is running: tasks are then only recorded.
CIAO_DISPATCH = ENV.dispatch
# Who this process signs its messages as (ciaoweb.core.signing): "controller" or "web".
CIAO_SIGNER_IDENTITY = ENV.signer_identity

# VLAN ranges per physnet for automatic allocation, e.g. "physnet1:100:199,physnet2:200:299".
# A physnet not listed uses CIAO_VLAN_DEFAULT_RANGE.
CIAO_VLAN_RANGES = ENV.vlan_ranges
CIAO_VLAN_DEFAULT_RANGE = ENV.vlan_default_range
# Both are validated from the environment (ciaoweb.core.envconfig) and, as settings, by the
# system check networks.E001 (ciaoweb/networks/checks.py).
# Per-tenant quotas (docs/api.md, "Quotas"): the limits of a tenant an admin set none for.
# Non-negative integers (envconfig; as settings, the system check tenancy.E001).
CIAO_QUOTA_NETWORKS = ENV.quota_networks
CIAO_QUOTA_INSTANCES = ENV.quota_instances
CIAO_QUOTA_VFS = ENV.quota_vfs

# The controller reads the agents' beats every CIAO_HEARTBEAT_INTERVAL seconds
# (ciaoweb.core.liveness); a host silent for CIAO_HEARTBEAT_TIMEOUT goes offline.
CIAO_HEARTBEAT_INTERVAL = ENV.heartbeat_interval
CIAO_HEARTBEAT_TIMEOUT = ENV.heartbeat_timeout
# The operations watchdog: a step with no progress for this long is sent again, and an
# operation whose step was sent CIAO_OPERATION_ATTEMPTS times fails with a reason.
CIAO_OPERATION_STEP_TIMEOUT = ENV.operation_step_timeout
CIAO_OPERATION_ATTEMPTS = ENV.operation_attempts
# The key the web process and the controller worker sign their own messages with
# (ciaoweb.core.signing). Agents never see it: each has its host's own key.
CIAO_CONTROL_KEY = ENV.control_key
CIAO_WATCHDOG_INTERVAL = ENV.watchdog_interval

# Authentication hardening (docs/security.md, "Authentication hardening").
# Sign-in throttling, for POST /api/v1/auth/token/ and the dashboard's /login/ (a 429 with
# Retry-After; "off" disables a limit): failed sign-ins per client address and username,
# and every sign-in request per client address.
CIAO_AUTH_THROTTLE = ENV.auth_throttle
CIAO_AUTH_ADDRESS_THROTTLE = ENV.auth_address_throttle
# An API token answers 401 this many seconds after it was issued (or after the last
# sign-in with the password, which renews it).
CIAO_TOKEN_TTL = ENV.token_ttl
# The throttles count in this cache: per process (locmem) unless CIAO_CACHE_URL names a
# Redis shared by every web process (needed when several serve the same site).
CIAO_CACHE_URL = ENV.cache_url
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
    "root": {"handlers": ["console"], "level": ENV.log_level},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
