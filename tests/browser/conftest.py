"""Playwright with Debian's Chromium (DESIGN §6), and a helper to log in.

Two kinds of server: the lead's live `cluster` fixture (tests/conftest.py; real agents,
simulator, dnsmasq) and `dashboard_server` below (daphne on the test database, no
agents: the test plays the agents by calling the controller-side result handlers, whose
websocket messages go through Redis to the browser like in production).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.test import override_settings

from ciaoweb.core.broker_acl import WEB_USER
from ciaoweb.localcluster.broker import OwnRedis

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# How long a live change may take to show up; a condition is awaited, never a fixed sleep.
LIVE_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def static_collected() -> None:
    """With DEBUG off, WhiteNoise serves STATIC_ROOT only: collect the dashboard's CSS/JS
    there before any server starts."""
    subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "collectstatic", "--noinput", "-v0"],
        cwd=REPO,
        check=True,
    )


# Package scope: Playwright's sync API keeps an event loop running in the main thread
# while it lives, and Django then refuses database access from later (sync) tests.
@pytest.fixture(scope="package")
def browser(static_collected):
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser, request):
    """`new_page(width=1280)`: a fresh context (own cookies) per call."""
    contexts = []

    def make(width: int = 1280, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(LIVE_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
    if request.node.get_closest_marker("django_db"):  # daphne on the test database
        _wait_for_other_queries_to_end()


def _wait_for_other_queries_to_end(timeout: float = 10.0) -> None:
    """Closed pages ask nothing more, but daphne may still be answering them: the flush
    after a test (TRUNCATE, one table lock after another) deadlocked with such a query in
    CI. Waits until no other connection to the test database is in a statement or a
    transaction (in a thread: Playwright's loop runs in this one)."""
    from django.db import connection

    def busy_elsewhere() -> int:
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND state <> 'idle'"
                )
                return cursor.fetchone()[0]
        finally:
            connection.close()

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=1) as pool:
        while pool.submit(busy_elsewhere).result() and time.monotonic() < deadline:
            time.sleep(0.05)


def log_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")
    wait_live(page)


def wait_live(page) -> None:
    """The page's websocket is open (live.js marks #live-status)."""
    page.wait_for_selector('#live-status[data-state="live"]')


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(settings_dict: dict) -> str:
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


def _wait_listening(port: int, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"daphne did not listen on {port} within {timeout}s")


@pytest.fixture(scope="module")
def dashboard_server(static_collected, django_db_setup, django_db_blocker) -> Iterator[str]:
    """daphne serving ciaoweb.asgi on pytest-django's (already migrated) test database,
    with a Redis channel layer of its own (ACLs on: daphne and this test process speak as
    the `web` user, like a cluster's API process) and recorded node tasks; yields its
    base URL."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the browser tests share the test database with daphne: PostgreSQL only")
    # Playwright's sync API keeps an asyncio loop running in the test thread, so Django
    # would refuse pytest-django's own synchronous flush after each test.
    allow_sync = pytest.MonkeyPatch()
    allow_sync.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    port = _free_port()
    log = REPO / "var" / f"browser-daphne-{port}.log"
    broker = OwnRedis(Path(tempfile.mkdtemp(prefix="ciao-browser-")), lambda: dict(os.environ))
    broker.start()
    web_url = broker.url(WEB_USER)
    layer = override_settings(
        REDIS_URL=web_url,
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [web_url]},
            }
        },
    )
    layer.enable()  # this process publishes what the tests change, as the web process would
    env = {k: v for k, v in os.environ.items() if k != "CIAO_CHANNEL_LAYER"}
    env.update(
        DATABASE_URL=_database_url(connection.settings_dict),
        REDIS_URL=web_url,
        CIAO_DISPATCH="record",
        DJANGO_SETTINGS_MODULE="ciaoweb.settings",
        PYTHONUNBUFFERED="1",
    )
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "ciaoweb.asgi:application",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, process, log, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.unlink(missing_ok=True)
        allow_sync.undo()
        layer.disable()
        broker.stop()
        shutil.rmtree(broker.run_dir, ignore_errors=True)
