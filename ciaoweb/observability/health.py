"""Readiness: does this process reach what it needs to serve (the database, the broker)?

Each check runs in a thread of its own and is given CHECK_TIMEOUT seconds; all of them
run at once, so a probe answers within about that long even when a host is unreachable
and a connect would hang. A check that is still stuck keeps its one thread: the probes
after it are told "timed out" at once instead of piling up threads.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connections

CHECK_TIMEOUT = 1.0  # seconds, per check
OK = "ok"
ERROR_MAX = 300  # characters of an error shown (an exception may carry a whole response)

Check = Callable[[float], None]


def check_database(timeout: float) -> None:
    """SELECT 1 on the default database, on a connection of this thread, closed after."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connections.close_all()  # this thread's only: the request's are its own


def check_broker(timeout: float) -> None:
    """PING the Celery broker (a Redis: PING is the one command every broker user may
    run, ciaoweb.core.broker_acl); another transport, a connection through kombu."""
    url = settings.CELERY_BROKER_URL
    if urlsplit(url).scheme in ("redis", "rediss", "unix"):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # redis-py retries 3 times by default
        )
        try:
            client.ping()
        finally:
            client.close()
        return
    from kombu import Connection

    with Connection(url, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)


CHECKS: dict[str, Check] = {"database": check_database, "broker": check_broker}

# One single-thread pool per check (see the module's docstring).
_pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}


def _pool(name: str) -> concurrent.futures.ThreadPoolExecutor:
    if name not in _pools:
        _pools[name] = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"ciao-readyz-{name}"
        )
    return _pools[name]


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:ERROR_MAX]


def run_checks(
    checks: dict[str, Check] | None = None, timeout: float = CHECK_TIMEOUT
) -> dict[str, str]:
    """`{name: "ok" | what went wrong}` for every check, within about `timeout` seconds."""
    checks = CHECKS if checks is None else checks
    futures = {name: _pool(name).submit(check, timeout) for name, check in checks.items()}
    concurrent.futures.wait(futures.values(), timeout=timeout)
    results = {}
    for name, future in futures.items():
        if not future.done():
            future.cancel()  # still queued behind a stuck one: never run it late
            results[name] = f"timed out after {timeout:g} s"
        elif (exc := future.exception()) is not None:
            results[name] = _describe(exc)
        else:
            results[name] = OK
    return results


def ready(results: dict[str, str]) -> bool:
    return all(result == OK for result in results.values())
