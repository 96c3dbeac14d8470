"""The controller's environment variables, validated once, when settings are imported.

One pydantic model (`Environment`): a field per variable (its alias is the variable's
name), with its default and its rule. `environment_or_exit()` (called by
ciaoweb/settings.py) stops the process with one line per bad variable, naming it, instead
of a traceback later or a silent default: `manage.py`, daphne, the Celery worker and
pytest all import the settings first. The reference of every variable is
docs/configuration.md (a test keeps it complete).

The grammar of the VLAN range variables lives here too, without Django, so the settings
can check them; ciaoweb.networks.vlans uses the same functions at request time and in its
system check (networks.E001), which also covers values set in settings directly.

No Django imports here: settings imports it.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ciaoweb.core.config_errors import reason
from ciaoweb.core.redis_urls import check_redis_url

# IEEE 802.1Q: the VLAN ids a network may use (ciaoweb.networks.models has the same bounds).
VLAN_MIN, VLAN_MAX = 1, 4094
# A sign-in throttle rate that disables the limit (ciaoweb.core.api.throttling).
THROTTLE_OFF = frozenset({"", "off", "none", "0"})
# DRF's rate grammar (SimpleRateThrottle.parse_rate): requests/period, the period's first
# letter s, m, h or d.
_RATE_RE = re.compile(r"^[1-9][0-9]*/[smhd][a-z]*\Z")
_INT_RE = re.compile(r"^[+-]?[0-9]+\Z")
_URL_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


# --- VLAN ranges (CIAO_VLAN_RANGES, CIAO_VLAN_DEFAULT_RANGE) -----------------------------


def _parse_range(text: str) -> tuple[int, int]:
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"bad VLAN range {text!r}: write it low:high, e.g. 100:199")
    low, high = (int(part) for part in parts)
    if not VLAN_MIN <= low <= high <= VLAN_MAX:
        raise ValueError(f"bad VLAN range {text!r}: need {VLAN_MIN} <= low <= high <= {VLAN_MAX}")
    return low, high


def parse_vlan_ranges(spec: str) -> dict[str, tuple[int, int]]:
    """`"physnet1:100:199,physnet2:200:299"` -> {"physnet1": (100, 199), ...}; raises
    ValueError naming the bad item."""
    if not isinstance(spec, str):
        raise ValueError(f"must be a string like physnet1:100:199, not {type(spec).__name__}")
    ranges: dict[str, tuple[int, int]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        physnet, _, bounds = item.partition(":")
        physnet = physnet.strip()
        if not physnet or not bounds:
            raise ValueError(f"bad item {item!r}: write it physnet:low:high, e.g. physnet1:100:199")
        if physnet in ranges:
            raise ValueError(f"bad item {item!r}: physnet {physnet} is listed twice")
        try:
            ranges[physnet] = _parse_range(bounds)
        except ValueError as exc:
            raise ValueError(f"bad item {item!r}: {exc}") from None
    return ranges


def parse_default_range(text: str) -> tuple[int, int]:
    if not isinstance(text, str):
        raise ValueError(f"must be a string like 100:3999, not {type(text).__name__}")
    return _parse_range(text.strip())


# --- value rules ----------------------------------------------------------------------


def _integer(value: Any) -> Any:
    """Digits only: "20.0" or "1e3" is not a count (pydantic alone would take them)."""
    if isinstance(value, str) and not _INT_RE.match(value):
        raise ValueError("is not an integer")
    return value


def _seconds(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _flag(value: Any) -> bool:
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise ValueError("must be 1 (on) or 0 (off)")


def _comma_list(value: Any) -> list[str]:
    return [item.strip() for item in str(value).split(",") if item.strip()]


def _origins(origins: list[str]) -> list[str]:
    for origin in origins:
        if not origin.startswith(("http://", "https://")):
            raise ValueError(f"{origin!r} needs its scheme, e.g. https://ciao.example.com")
    return origins


def _database_url(url: str | None) -> str | None:
    try:
        if url is not None:
            dj_database_url.parse(url)
    except Exception:  # dj_database_url raises several kinds, each a bad URL
        raise ValueError(
            "is not a database URL (e.g. postgres://user@host:5432/name or sqlite:////path)"
        ) from None
    return url


def _demo_database_url(url: str) -> str:
    return _database_url(url) if url else url


def _url(url: str) -> str:
    if not _URL_SCHEME_RE.match(url):
        raise ValueError("is not a URL (scheme://...)")
    return url


def _redis_url(url: str) -> str:
    return check_redis_url(url) if url else url


def _rate(rate: str) -> str:
    if rate.strip().lower() not in THROTTLE_OFF and not _RATE_RE.match(rate.strip()):
        raise ValueError("must be N/period (e.g. 10/min; period sec, min, hour or day) or off")
    return rate


def _log_level(level: str) -> str:
    if level.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level.upper()


def _vlan_ranges(spec: str) -> str:
    parse_vlan_ranges(spec)
    return spec


def _default_range(text: str) -> str:
    parse_default_range(text)
    return text


Count = Annotated[int, BeforeValidator(_integer), Field(ge=0)]
Seconds = Annotated[float, AfterValidator(_seconds)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Secret = Annotated[str, Field(repr=False)]


class Environment(BaseModel):
    """Every variable the controller's processes read (settings, the Celery app, the demo
    command). Fields are the variables' names as aliases; unset means the default."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Django
    # None: var/ in the checkout (settings)
    var_dir: Annotated[str, Field(min_length=1)] | None = Field(None, alias="CIAO_VAR_DIR")
    secret_key: Secret = Field("", alias="DJANGO_SECRET_KEY")
    debug: Flag = Field(False, alias="DJANGO_DEBUG")
    allowed_hosts: Annotated[list[str], BeforeValidator(_comma_list)] = Field(
        ["localhost", "127.0.0.1", "[::1]", "testserver"], alias="DJANGO_ALLOWED_HOSTS"
    )
    csrf_trusted_origins: Annotated[
        list[str], BeforeValidator(_comma_list), AfterValidator(_origins)
    ] = Field([], alias="DJANGO_CSRF_TRUSTED_ORIGINS")
    # None: a SQLite file under CIAO_VAR_DIR (settings)
    database_url: Annotated[str | None, AfterValidator(_database_url)] = Field(
        None, alias="DATABASE_URL", repr=False
    )
    # 0: no pool. The API processes only (deploy/web.env): ciaoweb.settings
    database_pool_size: Annotated[int, BeforeValidator(_integer), Field(ge=0, le=500)] = Field(
        0, alias="CIAO_DATABASE_POOL_SIZE"
    )
    log_level: Annotated[str, AfterValidator(_log_level)] = Field("INFO", alias="CIAO_LOG_LEVEL")
    # Redis, Celery, Channels
    redis_url: Annotated[str, AfterValidator(_url), AfterValidator(_redis_url)] = Field(
        "redis://127.0.0.1:6379/0", alias="REDIS_URL", repr=False
    )
    # None: REDIS_URL
    celery_broker_url: Annotated[str, AfterValidator(_url)] | None = Field(
        None, alias="CELERY_BROKER_URL", repr=False
    )
    channel_layer: Literal["", "redis", "memory"] = Field("", alias="CIAO_CHANNEL_LAYER")
    dispatch: Literal["celery", "record"] = Field("celery", alias="CIAO_DISPATCH")
    signer_identity: Literal["controller", "web"] = Field(
        "controller", alias="CIAO_SIGNER_IDENTITY"
    )
    control_key: Secret = Field("", alias="CIAO_CONTROL_KEY")
    # Networks and quotas
    vlan_ranges: Annotated[str, AfterValidator(_vlan_ranges)] = Field("", alias="CIAO_VLAN_RANGES")
    vlan_default_range: Annotated[str, AfterValidator(_default_range)] = Field(
        "100:3999", alias="CIAO_VLAN_DEFAULT_RANGE"
    )
    quota_networks: Count = Field(20, alias="CIAO_QUOTA_NETWORKS")
    quota_instances: Count = Field(200, alias="CIAO_QUOTA_INSTANCES")
    quota_vfs: Count = Field(400, alias="CIAO_QUOTA_VFS")
    # Hosts and operations
    heartbeat_interval: Seconds = Field(1.0, alias="CIAO_HEARTBEAT_INTERVAL")
    heartbeat_timeout: Seconds = Field(6.0, alias="CIAO_HEARTBEAT_TIMEOUT")
    operation_step_timeout: Seconds = Field(30.0, alias="CIAO_OPERATION_STEP_TIMEOUT")
    operation_attempts: Annotated[int, BeforeValidator(_integer), Field(ge=1)] = Field(
        3, alias="CIAO_OPERATION_ATTEMPTS"
    )
    watchdog_interval: Seconds = Field(5.0, alias="CIAO_WATCHDOG_INTERVAL")
    # Authentication
    auth_throttle: Annotated[str, AfterValidator(_rate)] = Field(
        "10/min", alias="CIAO_AUTH_THROTTLE"
    )
    auth_address_throttle: Annotated[str, AfterValidator(_rate)] = Field(
        "60/min", alias="CIAO_AUTH_ADDRESS_THROTTLE"
    )
    token_ttl: Seconds = Field(12 * 3600.0, alias="CIAO_TOKEN_TTL")
    cache_url: Annotated[str, AfterValidator(_redis_url)] = Field(
        "", alias="CIAO_CACHE_URL", repr=False
    )
    num_proxies: Count = Field(0, alias="CIAO_NUM_PROXIES")
    # Production only (ciaoweb.settings_production): SECURE_HSTS_SECONDS
    hsts_seconds: Count = Field(365 * 24 * 3600, alias="CIAO_HSTS_SECONDS")
    # The demo (manage.py demo)
    port: Annotated[int, BeforeValidator(_integer), Field(ge=1, le=65535)] = Field(
        8000, alias="CIAO_PORT"
    )
    nodes: Literal["sim", "qemu"] = Field("sim", alias="CIAO_NODES")
    demo_name: str = Field("demo", alias="CIAO_DEMO_NAME", min_length=1)
    # Empty: a fresh SQLite file per run (ciaoweb.localcluster's demo command)
    demo_database_url: Annotated[str, AfterValidator(_demo_database_url)] = Field(
        "", alias="CIAO_DEMO_DATABASE_URL", repr=False
    )


SECRETS = {"DJANGO_SECRET_KEY", "CIAO_CONTROL_KEY"}
VARIABLES = tuple(field.alias for field in Environment.model_fields.values())


class EnvConfigError(ValueError):
    """One line per bad variable, each naming it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _shown(name: str, value: Any) -> str:
    """The value as the message quotes it: never a secret, never a URL's password."""
    if name in SECRETS:
        return "(hidden)"
    text = str(value)
    if "://" in text:
        try:
            parts = urlsplit(text)
            if parts.password:
                host = parts.netloc.rsplit("@", 1)[-1]
                text = urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
        except ValueError:
            pass
    return repr(text)


def _problem(error: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    name = str(error["loc"][0]) if error["loc"] else "environment"
    return f"{name}={_shown(name, environ.get(name, ''))}: {reason(error)}"


def load(environ: Mapping[str, str] | None = None) -> Environment:
    """The validated variables of `environ` (default: os.environ); EnvConfigError
    lists every bad one."""
    environ = os.environ if environ is None else environ
    given = {
        name: environ[name] if name in SECRETS else environ[name].strip()
        for name in VARIABLES
        if name in environ
    }
    try:
        return Environment.model_validate(given)
    except ValidationError as exc:
        raise EnvConfigError(
            [_problem(error, environ) for error in exc.errors(include_url=False)]
        ) from None


def environment_or_exit(environ: Mapping[str, str] | None = None) -> Environment:
    """`load()`, or exit 2 with one line per bad variable (no traceback)."""
    try:
        return load(environ)
    except EnvConfigError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        print("error: see docs/configuration.md for every variable", file=sys.stderr)
        raise SystemExit(2) from None
