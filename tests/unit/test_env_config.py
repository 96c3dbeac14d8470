"""The controller's environment (ciaoweb/core/envconfig.py): every variable validated once,
a bad value refused with a line naming it (and `manage.py check` stopped, exit 2, no
traceback), the defaults the settings always had, and docs/configuration.md listing every
CIAO_* variable the code reads."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ciaoweb.core import envconfig
from ciaoweb.core.envconfig import VARIABLES, EnvConfigError, load
from ciaoweb.networks import models as network_models

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "configuration.md"
# CIAO_ names in the code that are no variables: prefixes the local cluster filters its
# environment by, and the udhcpc hook's output marker.
NOT_VARIABLES = {"CIAO_AGENT", "CIAO_SIGNER", "CIAO_LEASE"}
CIAO_NAME = re.compile(r"\bCIAO_[A-Z0-9_]*[A-Z0-9]\b")


def refused(**environ: str) -> list[str]:
    with pytest.raises(EnvConfigError) as error:
        load(environ)
    return error.value.problems


def test_the_defaults_are_the_settings_defaults():
    env = load({})
    assert (env.var_dir, env.database_url, env.secret_key, env.debug) == (None, None, "", False)
    assert env.allowed_hosts == ["localhost", "127.0.0.1", "[::1]", "testserver"]
    assert (env.redis_url, env.celery_broker_url) == ("redis://127.0.0.1:6379/0", None)
    assert (env.dispatch, env.channel_layer, env.signer_identity) == ("celery", "", "controller")
    assert (env.vlan_ranges, env.vlan_default_range) == ("", "100:3999")
    assert (env.quota_networks, env.quota_instances, env.quota_vfs) == (20, 200, 400)
    assert (env.heartbeat_interval, env.heartbeat_timeout, env.watchdog_interval) == (1, 6, 5)
    assert (env.operation_step_timeout, env.operation_attempts) == (30, 3)
    assert (env.auth_throttle, env.auth_address_throttle) == ("10/min", "60/min")
    assert (env.token_ttl, env.cache_url, env.num_proxies) == (43200, "", 0)
    assert (env.port, env.nodes, env.demo_name, env.log_level) == (8000, "sim", "demo", "INFO")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("CIAO_TOKEN_TTL", "abc", "is not a number"),
        ("CIAO_TOKEN_TTL", "0", "must be a positive number of seconds"),
        ("CIAO_TOKEN_TTL", "nan", "must be a positive number of seconds"),
        ("CIAO_HEARTBEAT_TIMEOUT", "", "is not a number"),
        ("CIAO_PORT", "-1", "must be at least 1"),
        ("CIAO_PORT", "65536", "must be at most 65535"),
        ("CIAO_PORT", "80.5", "is not an integer"),
        ("CIAO_OPERATION_ATTEMPTS", "0", "must be at least 1"),
        ("CIAO_NUM_PROXIES", "one", "is not an integer"),
        ("CIAO_QUOTA_NETWORKS", "-1", "must be at least 0"),
        ("CIAO_QUOTA_VFS", "many", "is not an integer"),
        ("CIAO_QUOTA_VFS", "20.0", "is not an integer"),
        ("CIAO_VLAN_RANGES", "physnet1:100-199", "bad item 'physnet1:100-199'"),
        ("CIAO_VLAN_RANGES", "p:1:2,p:3:4", "listed twice"),
        ("CIAO_VLAN_RANGES", "physnet1:0:5000", "need 1 <= low <= high <= 4094"),
        ("CIAO_VLAN_DEFAULT_RANGE", "100", "bad VLAN range '100'"),
        ("CIAO_AUTH_THROTTLE", "10/fortnight", "must be N/period"),
        ("CIAO_AUTH_ADDRESS_THROTTLE", "lots", "must be N/period"),
        ("DJANGO_DEBUG", "true", "must be 1 (on) or 0 (off)"),
        ("DJANGO_CSRF_TRUSTED_ORIGINS", "ciao.example.com", "needs its scheme"),
        ("DATABASE_URL", "ciaoweb.sqlite3", "is not a database URL"),
        ("CIAO_DEMO_DATABASE_URL", "mongodb://x/y", "is not a database URL"),
        ("REDIS_URL", "http://redis:6379/0", "not a Redis URL"),
        ("CELERY_BROKER_URL", "redis", "is not a URL"),
        ("CIAO_CACHE_URL", "memcached://x", "not a Redis URL"),
        ("REDIS_URL", "rediss://r:6380/0", "must verify the server's certificate"),
        ("REDIS_URL", "rediss://r:6380/0?ssl_cert_reqs=none", "ssl_cert_reqs=none does not"),
        ("CIAO_CACHE_URL", "rediss://r/0?ssl_cert_reqs=optional", "must verify the server's"),
        ("CIAO_CHANNEL_LAYER", "rabbit", "must be '', 'redis' or 'memory'"),
        ("CIAO_DISPATCH", "later", "must be 'celery' or 'record'"),
        ("CIAO_SIGNER_IDENTITY", "agent", "must be 'controller' or 'web'"),
        ("CIAO_NODES", "kvm", "must be 'sim' or 'qemu'"),
        ("CIAO_LOG_LEVEL", "loud", "must be one of DEBUG"),
        ("CIAO_VAR_DIR", "", "must not be empty"),
        ("CIAO_HSTS_SECONDS", "a year", "is not an integer"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(name, value, says):
    [line] = refused(**{name: value})
    assert line.startswith(f"{name}={value!r}: ") and says in line, line


def test_every_bad_variable_is_listed_at_once():
    lines = refused(CIAO_TOKEN_TTL="abc", CIAO_PORT="-1", CIAO_VLAN_RANGES="physnet1")
    assert [line.split("=")[0] for line in lines] == [
        "CIAO_VLAN_RANGES",
        "CIAO_TOKEN_TTL",
        "CIAO_PORT",
    ]


def test_no_secret_and_no_password_is_shown():
    lines = refused(
        REDIS_URL="http://web:s3cret@redis:6379/0", CIAO_CACHE_URL="x://cache:s3cret@h/0"
    )
    assert len(lines) == 2 and not any("s3cret" in line for line in lines)
    assert "'http://web:***@redis:6379/0'" in lines[0]
    assert "s3cret" not in repr(load({"DJANGO_SECRET_KEY": "s3cret", "CIAO_CONTROL_KEY": "s3cret"}))


def test_good_values_are_taken_as_the_settings_always_took_them():
    env = load(
        {
            "CIAO_QUOTA_VFS": " 7 ",
            "CIAO_AUTH_THROTTLE": "",  # empty disables, like "off"
            "CIAO_AUTH_ADDRESS_THROTTLE": "off",
            "CIAO_VLAN_RANGES": " physnet1:100:199 , physnet2:200:299,",
            "CIAO_TOKEN_TTL": "1.5",
            "CIAO_LOG_LEVEL": "debug",
            "DJANGO_ALLOWED_HOSTS": "ciao.example.com, .example.org,",
            "DJANGO_DEBUG": "1",
            "CELERY_BROKER_URL": "memory://",
            "CIAO_DEMO_DATABASE_URL": "",
            "CIAO_CHANNEL_LAYER": "memory",
            "UNRELATED": "whatever",
        }
    )
    assert (env.quota_vfs, env.auth_throttle, env.auth_address_throttle) == (7, "", "off")
    assert env.vlan_ranges == "physnet1:100:199 , physnet2:200:299,"
    assert (env.token_ttl, env.log_level, env.debug) == (1.5, "DEBUG", True)
    assert env.allowed_hosts == ["ciao.example.com", ".example.org"]
    assert (env.celery_broker_url, env.demo_database_url, env.channel_layer) == (
        "memory://",
        "",
        "memory",
    )


def test_the_settings_come_from_the_model(settings):
    assert settings.ENV == load(os.environ)
    assert settings.CIAO_TOKEN_TTL == settings.ENV.token_ttl
    assert settings.CIAO_QUOTA_VFS == settings.ENV.quota_vfs
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.ENV.num_proxies


def test_the_vlan_bounds_are_the_models():
    assert (envconfig.VLAN_MIN, envconfig.VLAN_MAX) == (
        network_models.VLAN_MIN,
        network_models.VLAN_MAX,
    )


def test_bad_variables_stop_manage_py_check_naming_each():
    bad = {"CIAO_TOKEN_TTL": "abc", "CIAO_VLAN_RANGES": "physnet1:100-199"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={**os.environ, **bad},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: CIAO_VLAN_RANGES='physnet1:100-199': bad item"), lines
    assert lines[1:] == [
        "error: CIAO_TOKEN_TTL='abc': is not a number",
        "error: see docs/configuration.md for every variable",
    ]


# --- the reference ---------------------------------------------------------------------


def _names_in_code() -> dict[str, Path]:
    found = {}
    for tree in ("ciaoweb", "simulator"):
        for path in sorted((REPO / tree).rglob("*.py")):
            for name in CIAO_NAME.findall(path.read_text()):
                found.setdefault(name, path.relative_to(REPO))
    return found


def test_every_ciao_variable_the_code_reads_is_in_the_reference():
    documented = set(re.findall(r"`(CIAO_[A-Z0-9_]+)`", DOCS.read_text()))
    found = _names_in_code()
    missing = {name: str(path) for name, path in found.items() if name not in documented}
    assert not set(missing) - NOT_VARIABLES, f"not in docs/configuration.md: {missing}"
    assert "CIAO_TOKEN_TTL" in found and "CIAO_SIM_DIR" in found  # the scan sees both trees


def test_every_variable_of_the_model_is_in_the_reference():
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", DOCS.read_text(), re.MULTILINE))
    assert set(VARIABLES) <= documented
