"""Suite-wide rules.

In CI (`CIAO_REQUIRE_SIM=1`) a skipped test is a failed test: a missing prerequisite
(root, dnsmasq, PostgreSQL, Chromium...) must break the build instead of hiding.
"""

import contextlib
import os
from pathlib import Path

import pytest

REQUIRE_ALL = os.environ.get("CIAO_REQUIRE_SIM") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CIAO_REQUIRE_SIM=1, which forbids skips: {reason}"


@pytest.fixture(autouse=True)
def _record_node_tasks(request, settings):
    """In-process tests have no agents: node tasks are recorded, not sent to a broker."""
    if request.node.get_closest_marker("e2e") is None:
        settings.CIAO_DISPATCH = "record"
    yield


@pytest.fixture(autouse=True)
def _no_sign_ins_counted():
    """The sign-in throttles (ciaoweb.core.api.throttling) count in the cache, which lives
    as long as the process: every test starts with nothing counted (a locmem cache only;
    never flush a shared one)."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()
    yield


@contextlib.contextmanager
def searchable_dir():
    """A scratch dir whose parents let others through (pytest's tmp_path sits under 0700
    dirs): dnsmasq drops root to ciao-dnsmasq and must still reach its hosts.d."""
    import shutil
    import tempfile

    made = Path(tempfile.mkdtemp(prefix="ciao-test-"))
    made.chmod(0o755)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def searchable_tmp():
    with searchable_dir() as made:
        yield made


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fresh_database_url(name: str) -> str:
    """A dedicated PostgreSQL database for the cluster's processes (they cannot share the
    test database, which pytest-django owns), or a SQLite file without PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        path = (
            Path(os.environ.get("CIAO_VAR_DIR", Path(__file__).parents[1] / "var"))
            / f"{name}.sqlite3"
        )
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import psycopg

    base = url.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def cluster():
    """A whole local cluster (server, controller worker, agents, simulator, dnsmasq),
    shared by the end-to-end and browser tests of one session."""
    from ciaoweb.localcluster.cluster import ClusterConfig, LocalCluster
    from tests.prereqs import require_sim

    require_sim()
    name = f"e2e{os.getpid() % 10000}"
    config = ClusterConfig(
        name=name,
        port=_free_port(),
        database_url=_fresh_database_url(f"ciaoweb_{name}"),
        # Its own Redis (a free port, ACL users): sessions side by side stay apart.
        # Two API processes on one socket, as deployed: a websocket's events come from
        # writes another process served (through the channel layer).
        api_workers=2,
    )
    local = LocalCluster(config, progress=lambda line: None)
    local.start()
    try:
        yield local
    finally:
        local.stop()
