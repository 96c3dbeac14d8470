"""The node agent's Celery app: no Django, only the broker it is configured with."""

from __future__ import annotations

from celery import Celery

from ciaoweb.taskrouting import CELERY_COMMON

from .config import AgentConfig


def make_app(broker_url: str) -> Celery:
    app = Celery("ciaoweb-agent", broker=broker_url, include=["ciaoweb.agent.tasks"])
    app.conf.update(CELERY_COMMON)
    # A node's worker serves its own queue only; it never runs controller tasks.
    app.conf.task_create_missing_queues = True
    return app


def _configured_broker() -> str:
    try:
        return AgentConfig.from_env().broker_url
    except RuntimeError:
        import os

        return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


app = make_app(_configured_broker())
