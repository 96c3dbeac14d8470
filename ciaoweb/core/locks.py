"""Transaction-scoped named locks, for checks that count rows no single row stands for."""

from __future__ import annotations

import zlib

from django.db import connection


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
