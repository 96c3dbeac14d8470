"""A minimal Celery app for test_broker_watch: our shared worker settings (remote control
off, the broker-watching consumer, one list per queue), plain JSON, two tiny tasks."""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery

from ciaoweb.taskrouting import CELERY_COMMON, CONTROLLER_QUEUE

SHARED = (
    "task_queues",
    "broker_transport_options",
    "worker_enable_remote_control",
    "worker_send_task_events",
    "worker_consumer",
)


def make_app(broker_url: str) -> Celery:
    app = Celery("ciao-watch-test", broker=broker_url)
    app.conf.update({name: CELERY_COMMON[name] for name in SHARED})
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=CONTROLLER_QUEUE,
        broker_connection_retry_on_startup=True,
    )
    if os.environ.get("CIAO_WATCH_PLAIN_CONSUMER") == "1":  # to see the test fail without it
        app.conf.worker_consumer = "celery.worker.consumer:Consumer"

    @app.task(name="watch.sleep")
    def sleep(seconds: float, marker: str) -> None:
        Path(marker).write_text("started")
        time.sleep(seconds)
        Path(f"{marker}.done").write_text("done")

    @app.task(name="watch.mark")
    def mark(path: str) -> None:
        Path(path).write_text("done")

    return app


app = make_app(os.environ.get("CIAO_WATCH_BROKER", "memory://"))
