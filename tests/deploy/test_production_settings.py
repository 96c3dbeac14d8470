"""ciaoweb.settings_production, started as the units start it: from the example env files
with only their placeholders replaced, in a process of its own."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys

import pytest

from .conftest import REPO, production_env, read_example, run_python


def test_check_deploy_passes_with_the_example_environment(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=production_env(tmp_path / "var"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


EXAMPLE = read_example("ciaoweb.env.example")
REFUSED = {
    "no secret key": ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY is not set"),
    "an empty secret key": ({"DJANGO_SECRET_KEY": " "}, "DJANGO_SECRET_KEY is not set"),
    "the example's secret key": (
        {"DJANGO_SECRET_KEY": EXAMPLE["DJANGO_SECRET_KEY"]},
        "DJANGO_SECRET_KEY is still the example's placeholder",
    ),
    "Django's insecure key": (
        {"DJANGO_SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(50)},
        "DJANGO_SECRET_KEY is still the example's placeholder",
    ),
    "a short secret key": (
        {"DJANGO_SECRET_KEY": secrets.token_urlsafe(20)},
        "DJANGO_SECRET_KEY is too weak",
    ),
    "a secret key of one character": ({"DJANGO_SECRET_KEY": "x" * 80}, "too weak"),
    "no control key": ({"CIAO_CONTROL_KEY": None}, "CIAO_CONTROL_KEY is not set"),
    "the example's control key": (
        {"CIAO_CONTROL_KEY": EXAMPLE["CIAO_CONTROL_KEY"]},
        "CIAO_CONTROL_KEY is still the example's placeholder",
    ),
    "no allowed hosts": ({"DJANGO_ALLOWED_HOSTS": None}, "DJANGO_ALLOWED_HOSTS is not set"),
    "every host allowed": ({"DJANGO_ALLOWED_HOSTS": "ciao.example.com,*"}, "may not be '*'"),
    "no database": ({"DATABASE_URL": None}, "DATABASE_URL is not set"),
    "SQLite": ({"DATABASE_URL": "sqlite://"}, "production runs on PostgreSQL"),
    "an in-memory channel layer": ({"CIAO_CHANNEL_LAYER": "memory"}, "CIAO_CHANNEL_LAYER"),
}


# Each case in the same process: the settings module imported afresh each time.
REFUSALS = """
import importlib, json, os, sys
from django.core.exceptions import ImproperlyConfigured

base, seen = dict(os.environ), {}
for case, overrides in json.loads(sys.argv[1]).items():
    os.environ.clear()
    os.environ.update({k: v for k, v in {**base, **overrides}.items() if v is not None})
    for module in ("ciaoweb.settings_production", "ciaoweb.settings"):
        sys.modules.pop(module, None)
    try:
        importlib.import_module("ciaoweb.settings_production")
        seen[case] = "started"
    except ImproperlyConfigured as exc:
        seen[case] = f"ImproperlyConfigured: {exc}"
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def refusals(tmp_path_factory) -> tuple[dict[str, str], object]:
    var = tmp_path_factory.mktemp("refusals") / "var"
    cases = {case: overrides for case, (overrides, _) in REFUSED.items()}
    done = run_python(REFUSALS, production_env(var), json.dumps(cases))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), var


@pytest.mark.parametrize("case", REFUSED)
def test_a_missing_or_placeholder_value_stops_the_process(refusals, case):
    seen, var = refusals
    assert seen[case].startswith("ImproperlyConfigured"), seen[case]
    assert REFUSED[case][1] in seen[case]
    # Refused before the base settings could make up a key of their own.
    assert not (var / "secret_key").exists()


def test_the_same_environment_with_its_keys_starts(tmp_path):
    """The refusals above are the changes, not the rest of the environment."""
    done = run_python("import ciaoweb.settings_production", production_env(tmp_path / "var"))
    assert done.returncode == 0, done.stderr[-3000:]


BEHAVIOUR = """
import json, re
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client

call_command("collectstatic", "--noinput", verbosity=0)
client = Client()
https = {"HTTP_HOST": "ciao.example.com", "HTTP_X_FORWARDED_PROTO": "https"}
plain = client.get("/login/", HTTP_HOST="ciao.example.com")
probe = client.get("/healthz", HTTP_HOST="127.0.0.1:8001")
page = client.get("/login/", **https)
assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.content.decode())
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "probe": probe.status_code,
    "page": page.status_code,
    "hsts": page.get("Strict-Transport-Security"),
    "csrf_cookie_secure": bool(page.cookies["csrftoken"]["secure"]),
    "assets": {url: client.get(url, **https).status_code for url in assets},
    "gzipped": sorted(p.name for p in (settings.STATIC_ROOT / "css").glob("*.gz"))[:1],
    "num_proxies": settings.REST_FRAMEWORK["NUM_PROXIES"],
    "trusted_origins": settings.CSRF_TRUSTED_ORIGINS,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "debug": settings.DEBUG,
    "cache_prefix": settings.CACHES["default"].get("KEY_PREFIX"),
}))
"""


def test_behind_the_tls_proxy_with_collected_static_files(tmp_path):
    """HTTP is redirected, a probe on the backend's own port is not; HTTPS (as the proxy
    says) gets HSTS and secure cookies; DEBUG stays off whatever DJANGO_DEBUG says; the
    page's static files have hashed names and are served from what collectstatic wrote.
    Nothing here needs the database."""
    env = production_env(tmp_path / "var", DJANGO_DEBUG="1")  # ignored: DEBUG stays off
    done = run_python(BEHAVIOUR, env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://ciao.example.com/login/"]
    assert seen["probe"] == 200
    assert seen["page"] == 200
    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert seen["csrf_cookie_secure"] and seen["session_cookie_secure"]
    assert seen["assets"] and set(seen["assets"].values()) == {200}, seen["assets"]
    assert all(re.search(r"\.[0-9a-f]{12}\.(css|js)$", url) for url in seen["assets"])
    assert seen["gzipped"], "whitenoise wrote no compressed copies"
    assert seen["num_proxies"] == 1
    # The loopback host is for probes only, never a browser origin.
    assert seen["trusted_origins"] == ["https://ciao.example.com"]
    assert seen["debug"] is False
    assert seen["cache_prefix"] == "ciao-cache"
