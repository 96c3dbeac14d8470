"""`python manage.py demo` run as a user starts it, for the tests that drive a whole demo
(tests/e2e/test_demo_crash.py, tests/realnic/test_qemu_demo.py): its own session and
environment (none of the test process's CIAO_/DJANGO_/CELERY_ settings or database URL),
and `make clean`'s command scoped to it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def demo_env(**settings: str) -> dict[str, str]:
    """This process's environment without our settings, plus `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CIAO_", "DJANGO_", "CELERY_")) and k != "DATABASE_URL"
    }
    env.update(settings)
    return env


def start_demo(env: dict[str, str], log: Path) -> subprocess.Popen:
    """The demo in a session of its own (what `kill -9 -<pgid>` reaches), output to log."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "demo"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def clean_demo(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """What `make clean` runs, for this demo only."""
    return subprocess.run(
        [sys.executable, "-m", "ciaoweb.localcluster", "clean", "--name", name],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )


def log_tail(log: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


def poll_demo(
    predicate,
    timeout: float,
    what: str,
    demo: subprocess.Popen,
    log: Path,
    *,
    interval: float = 0.5,
    tolerate: tuple[type[Exception], ...] = (httpx.HTTPError,),
):
    """predicate()'s first truthy value within timeout (errors in `tolerate` count as a
    no), else None; fails at once when the demo exited."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(*tolerate):
            if value := predicate():
                return value
        if demo.poll() is not None:
            pytest.fail(f"the demo exited ({demo.returncode}) before {what}:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_demo(predicate, timeout: float, what: str, demo: subprocess.Popen, log: Path, **kw):
    """poll_demo, failing the test on a timeout."""
    value = poll_demo(predicate, timeout, what, demo, log, **kw)
    if not value:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}:\n{log_tail(log)}")
    return value
