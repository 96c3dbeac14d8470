"""Sending a task from a thread that never sent one (daphne runs each request on a new
thread) reuses the app's one result backend: Celery made one per thread, looking up
every installed backend's entry point each time, 16 ms of CPU per request that queued
a task."""

from __future__ import annotations

import threading

from ciaoweb.agent.app import app as agent_app
from ciaoweb.celery import app as controller_app


def _backend_seen_by_a_new_thread(app) -> object:
    seen = []
    thread = threading.Thread(target=lambda: seen.append(app.backend))
    thread.start()
    thread.join()
    return seen[0]


def test_every_thread_shares_the_apps_result_backend():
    for app in (controller_app, agent_app):
        first = _backend_seen_by_a_new_thread(app)
        assert _backend_seen_by_a_new_thread(app) is first
        assert app.backend is first
