"""A node installs `pip install ciaoweb` without the `controller` extra: the agent (and the
`ciao` CLI) must work with none of the web stack importable, and need nothing beyond the
base requirements."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import (
    NO_WEB_STACK,
    base_closure,
    base_env,
    outside_the_base_install,
    run_python,
    without,
)

PACKAGES = ("ciaoweb.agent", "ciaoweb.cli")


def test_the_agent_and_the_cli_start_without_the_web_stack():
    # As `python -m ciaoweb.agent --help` (what ciao-agent runs).
    code = NO_WEB_STACK + "import runpy; runpy.run_module('ciaoweb.agent', run_name='__main__')"
    done = run_python(code, base_env(), "--help")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--credential-file" in done.stdout
    cli = run_python(
        NO_WEB_STACK + "from ciaoweb.cli.main import main; main()", base_env(), "--help"
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "Usage" in cli.stdout


IMPORT_ALL = """
import importlib, pkgutil, sys

for package in sys.argv[1:]:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
print("imported")
"""


def test_every_module_of_the_agent_and_cli_imports_from_the_base_install_alone():
    """As if only the base requirements (and theirs) were installed: every distribution
    outside them unimportable, the web stack first. An optional import (kombu trying
    msgpack) may fail quietly; a needed one fails the import here."""
    absent = outside_the_base_install()
    assert {"django", "rest_framework", "channels", "daphne", "whitenoise"} <= absent
    done = run_python(without(absent) + IMPORT_ALL, base_env(), *PACKAGES)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("imported")


def test_the_base_requirements_leave_the_web_stack_to_the_controller_extra():
    requires = [Requirement(r) for r in importlib.metadata.requires("ciaoweb")]
    base = {canonicalize_name(r.name) for r in requires if r.marker is None}
    controller = {
        canonicalize_name(r.name)
        for r in requires
        if r.marker is not None and r.marker.evaluate({"extra": "controller"})
    }
    web = {
        "django",
        "djangorestframework",
        "channels",
        "channels-redis",
        "daphne",
        "drf-spectacular",
        "drf-spectacular-sidecar",
        "django-filter",
        "whitenoise",
        "dj-database-url",
        "psycopg",
    }
    assert not base & web, f"the base install pulls the web stack: {base & web}"
    assert web <= controller
    assert {"celery", "redis", "pyroute2", "pyyaml", "pydantic", "click", "httpx"} <= base
    # ... and no requirement of the web stack comes in through another base requirement.
    assert not base_closure() & web


def test_the_installed_metadata_is_pyprojects():
    """The checks above read the installed metadata: it must be the current pyproject's
    (a stale install would make them pass or fail for the wrong file)."""
    import tomllib

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    requires = importlib.metadata.requires("ciaoweb")
    base = sorted(r for r in requires if Requirement(r).marker is None)
    assert base == sorted(str(Requirement(r)) for r in project["dependencies"])
    controller = sorted(
        str(Requirement(r)).split(";")[0]
        for r in requires
        if Requirement(r).marker is not None
        and Requirement(r).marker.evaluate({"extra": "controller"})
    )
    assert controller == sorted(
        str(Requirement(r)) for r in project["optional-dependencies"]["controller"]
    )
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert {name: scripts[name].value for name in project["scripts"]} == project["scripts"]
