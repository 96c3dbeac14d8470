"""Transaction-scoped named locks, for checks that count rows no single row stands for,
and the retry of a transaction PostgreSQL ended as a deadlock's victim."""

from __future__ import annotations

import functools
import logging
import zlib
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, connection

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def hold_until_commit(name: str) -> None:
    """Serialise the transactions that take the lock `name` until each commits or rolls
    back. On PostgreSQL an advisory lock: it conflicts with nothing but itself, so it adds
    no deadlock with the row locks other work takes (locking the rows that were counted
    did: a PF's `host` join also locked host rows a heartbeat was updating). SQLite
    serialises every writing transaction anyway."""
    if connection.vendor != "postgresql":
        return
    key = zlib.crc32(name.encode())  # stable across processes, unlike hash()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


DEADLOCK_SQLSTATE = "40P01"  # PostgreSQL's deadlock_detected
DEADLOCK_ATTEMPTS = 3


def retried_on_deadlock(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` (an outermost transaction) again when PostgreSQL chose it as a
    deadlock's victim: the victim's work is rolled back whole, the other side commits,
    and the second try finds no cycle. Inside another transaction it is that one's to
    retry, so the error is passed up."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, DEADLOCK_ATTEMPTS):
            try:
                return function(*args, **kwargs)
            except OperationalError as exc:
                deadlock = getattr(exc.__cause__, "sqlstate", None) == DEADLOCK_SQLSTATE
                if not deadlock or connection.in_atomic_block:
                    raise
                log.warning("%s: deadlock victim, attempt %d: %s", function.__name__, attempt, exc)
        return function(*args, **kwargs)

    return call
