"""The hosts' liveness check (ciaoweb.core.liveness), run by beat itself.

A thread of the beat process reads every host's beat and applies it each
CIAO_HEARTBEAT_INTERVAL. It was a beat-scheduled task on the controller's queue: during a
burst each check waited behind hundreds of agent reports until it expired, and a host
killed then stayed `online` for as long as the queue was long (seen in `make bench`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time

from celery.signals import beat_init
from django.conf import settings
from django.db import connection

from ciaoweb.core import liveness
from ciaoweb.inventory.models import Host
from ciaoweb.inventory.services import note_liveness

log = logging.getLogger(__name__)


@functools.cache
def _client():
    """The agents' liveness keys live in the broker's Redis."""
    return liveness.redis_client(settings.CELERY_BROKER_URL)


def check_hosts() -> dict[str, list[str]]:
    """Read every host's last beat and apply it (offline / back online)."""
    hosts = list(Host.objects.values_list("name", flat=True))
    return note_liveness(liveness.beat_ages(_client(), hosts))


def _run(stop: threading.Event) -> None:
    interval = settings.CIAO_HEARTBEAT_INTERVAL
    while not stop.is_set():
        started = time.monotonic()
        try:
            check_hosts()
        except Exception:  # the broker or the database away: try again next interval
            log.exception("liveness check failed")
            connection.close()
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def start_checker(stop: threading.Event | None = None) -> threading.Thread:
    thread = threading.Thread(
        target=_run, args=(stop or threading.Event(),), name="liveness-check", daemon=True
    )
    thread.start()
    return thread


@beat_init.connect  # `celery beat` and the embedded beat of `celery worker -B` alike
def _check_in_beat(**_kwargs) -> None:
    """Exactly one beat runs per deployment: the check runs beside its schedule, never
    behind the controller's queue (this module is imported with the controller's tasks)."""
    start_checker()
