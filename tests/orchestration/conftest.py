"""Fixtures of the in-process orchestration tests: node tasks are recorded
(settings.CIAO_DISPATCH = "record"), and what the API side queues for the controller's
worker is run by hand, as the worker would (`worker`, `run`)."""

from __future__ import annotations

import pytest

from ciaoweb.celery import app
from ciaoweb.operations import queue
from ciaoweb.orchestration import tasks  # noqa: F401 - registers the controller's tasks


@pytest.fixture(autouse=True)
def no_publish(monkeypatch):
    monkeypatch.setattr("ciaoweb.events.services.notify", lambda *args: None)


@pytest.fixture
def worker(django_capture_on_commit_callbacks):
    """Runs what the API side queued for the controller's worker (advance an operation,
    a network changed), the way the worker would: the same tasks, on-commit sends run."""
    queue.recorded.clear()

    def drain() -> None:
        while queue.recorded:
            name, args = queue.recorded.pop(0)
            with django_capture_on_commit_callbacks(execute=True):
                app.tasks[name](*args, sender="web")  # as the web process signed it

    yield drain
    queue.recorded.clear()


@pytest.fixture
def run(django_capture_on_commit_callbacks, worker):
    """Call a controller function with its on-commit sends executed, then drain."""

    def call(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            value = function(*args, **kwargs)
        worker()
        return value

    return call
