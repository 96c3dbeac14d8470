"""The one way the API side asks the controller's worker for work: a controller task by
name, queued once the current transaction commits (so the worker sees the rows).

The web process never sends node tasks itself; it writes an Operation and queues
"advance it". `settings.CIAO_DISPATCH = "record"` (in-process tests, no broker) keeps
the requests in `recorded` instead.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from ciaoweb import taskrouting as names
from ciaoweb.celery import app

recorded: list[tuple[str, tuple]] = []


def enqueue(task_name: str, *args: object) -> None:
    if settings.CIAO_DISPATCH == "record":
        recorded.append((task_name, args))
        return
    app.send_task(task_name, args=[str(arg) for arg in args])


def enqueue_on_commit(task_name: str, *args: object) -> None:
    transaction.on_commit(lambda: enqueue(task_name, *args))


def advance_on_commit(operation_id: object) -> None:
    """Ask the controller's worker to advance this operation once it is committed."""
    enqueue_on_commit(names.ADVANCE_OPERATION, operation_id)
