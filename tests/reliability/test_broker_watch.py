"""A worker whose every slot is busy when Redis restarts still comes back (remote control
is off, so no pidbox socket notices the dead connection for it: ciaoweb.core.broker_watch
does). Without the watch, the task that ends while Redis is down fails its ack, its slot
never frees, and the worker takes nothing more (CIAO_WATCH_PLAIN_CONSUMER=1 shows it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ciaoweb.core.broker_acl import CONTROLLER_USER, WEB_USER
from ciaoweb.localcluster.broker import OwnRedis
from ciaoweb.localcluster.processes import RUN_DIR_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]


def _wait_file(path: Path, timeout: float, worker: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert worker.poll() is None, f"the worker exited:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{path.name} never written:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def test_a_busy_worker_reconnects_after_a_redis_restart(tmp_path):
    from tests.prereqs import require

    require(("redis-server",), "the broker watch test")
    env = {"PATH": os.environ.get("PATH", ""), RUN_DIR_ENV: str(tmp_path)}
    redis = OwnRedis(tmp_path, lambda: env).start()
    log = tmp_path / "worker.log"
    argv = [sys.executable, "-m", "celery", "-A", "tests.reliability.watch_app", "worker"]
    argv += ["-Q", "controller", "-c", "1", "-P", "prefork", "--loglevel", "INFO"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**os.environ, "CIAO_WATCH_BROKER": redis.url(CONTROLLER_USER)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    from tests.reliability.watch_app import make_app

    sender = make_app(redis.url(WEB_USER))  # as the web process sends controller tasks
    try:
        sender.send_task("watch.mark", args=[str(tmp_path / "ready")])
        _wait_file(tmp_path / "ready", 60, worker, log)
        # Its one slot busy (prefetch 1, concurrency 1); the broker dies, the task ends
        # while it is down (its ack fails: the slot is never freed), the broker comes back.
        sender.send_task("watch.sleep", args=[1.0, str(tmp_path / "busy")])
        _wait_file(tmp_path / "busy", 30, worker, log)
        redis.kill()
        _wait_file(tmp_path / "busy.done", 30, worker, log)
        time.sleep(0.5)
        redis.start()
        sender.send_task("watch.mark", args=[str(tmp_path / "after")])
        _wait_file(tmp_path / "after", 45, worker, log)
    finally:
        sender.close()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        redis.stop()
