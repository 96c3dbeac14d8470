"""The controller's Celery app. Node tasks go to `node.<name>`, everything else to
`controller` (see ciaoweb.taskrouting)."""

import os

from celery import Celery, signals
from django.conf import settings

from ciaoweb import taskrouting as names
from ciaoweb.core import signing
from ciaoweb.core.pdeathsig import install_celery_hooks
from ciaoweb.taskrouting import CELERY_COMMON

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ciaoweb.settings")

app = Celery("ciaoweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(CELERY_COMMON)
app.autodiscover_tasks(["ciaoweb.orchestration"], related_name="tasks")


def _signer() -> signing.Signer:
    """The web process signs as "web", the controller worker (and beat) as "controller"."""
    from ciaoweb.orchestration.trust import controller_signer  # needs Django's models

    return controller_signer(settings.CIAO_SIGNER_IDENTITY)


signing.install_lazy(_signer)
# A message the controller cannot take (unsigned, forged) becomes a security event.
app.conf.worker_consumer = "ciaoweb.orchestration.consumer:RecordingConsumer"
# Pool children and the embedded beat (-B) die with the worker, even by SIGKILL.
install_celery_hooks()

# A pool child keeps its database connection from task to task (Celery's Django fixup
# closes it only when older than this or broken): a connection per task cost a
# PostgreSQL backend fork and a cold catalog cache, in a burst about as much CPU as the
# tasks' own queries. Checked before each reuse, so a restarted database costs one retry.
# Only the workers: under ASGI persistent connections would leak one per thread.
WORKER_CONN_MAX_AGE = 300


@signals.task_prerun.connect(weak=False)
def _defer_pushes(sender=None, **_) -> None:
    """A task's websocket pushes wait until it ends: the node tasks and next steps its
    commits send go first (ciaoweb.events.services.deferred_pushes). Celery's signals
    are every app's: only this app's tasks are ours."""
    if getattr(sender, "app", None) is app:
        from ciaoweb.events.services import defer_pushes

        defer_pushes()


@signals.task_postrun.connect(weak=False)
def _send_pushes(sender=None, **_) -> None:
    if getattr(sender, "app", None) is app:
        from ciaoweb.events.services import send_deferred_pushes

        send_deferred_pushes()


@signals.worker_init.connect(weak=False)
def _refuse_a_connection_pool(**_) -> None:
    """A pool opened in the worker's main process would be shared by the children it
    forks (one socket, several processes): CIAO_DATABASE_POOL_SIZE is the API's only."""
    if settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
        raise RuntimeError(
            "CIAO_DATABASE_POOL_SIZE is set: it is for the API processes only (web.env); "
            "the controller's worker keeps one connection per pool process instead"
        )


@signals.worker_process_init.connect(weak=False)
def _keep_database_connections(**_) -> None:
    from django.db import connections

    for connection in connections.all():
        connection.settings_dict["CONN_MAX_AGE"] = WORKER_CONN_MAX_AGE
        connection.settings_dict["CONN_HEALTH_CHECKS"] = True


# From the validated settings (ciaoweb.core.envconfig): a bad value stops the worker with
# a line naming it.
app.conf.beat_schedule = {
    "check-heartbeats": {
        "task": names.CHECK_HEARTBEATS,
        "schedule": settings.CIAO_HEARTBEAT_INTERVAL,
        # A check that waited behind a busy queue is dropped: the next one reads fresher.
        "options": {"expires": 2 * settings.CIAO_HEARTBEAT_INTERVAL},
    },
    "operations-watchdog": {
        "task": names.OPERATIONS_WATCHDOG,
        "schedule": settings.CIAO_WATCHDOG_INTERVAL,
    },
}
