"""Two transactions meeting on PostgreSQL row locks in the order a race needs: the first
takes its locks and holds them, the second starts and is seen waiting for a lock, then
the first commits. What either raised (a deadlock, say) is returned, not raised."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection, connections, transaction


def waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def meet(holder: Callable[[], object], waiter: Callable[[], object]) -> list[Exception]:
    """`holder()` in a transaction that commits once `waiter()` (in another thread, in
    whatever transaction it makes itself) waits for a lock or has ended."""
    held, release, errors = threading.Event(), threading.Event(), []

    def hold() -> None:
        try:
            with transaction.atomic():
                holder()
                held.set()
                assert release.wait(30)
        except Exception as exc:  # returned to the test
            errors.append(exc)
        finally:
            held.set()
            connections.close_all()

    def wait() -> None:
        try:
            waiter()
        except Exception as exc:  # returned to the test
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=hold)
    first.start()
    assert held.wait(30)
    second = threading.Thread(target=wait)
    second.start()
    for _ in range(500):
        if waiting_on_a_lock() or not second.is_alive():
            break
        threading.Event().wait(0.01)
    release.set()
    first.join(30)
    second.join(30)
    return errors
