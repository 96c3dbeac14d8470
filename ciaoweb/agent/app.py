"""The node agent's Celery app: no Django, only the broker it is configured with."""

from __future__ import annotations

import os

from celery import Celery

from ciaoweb.core.pdeathsig import install_celery_hooks
from ciaoweb.taskrouting import CELERY_COMMON

from .config import AgentConfig

# Celery lets these environment variables override the broker an app is given; an agent
# serves the broker it is configured with and nothing else.
BROKER_ENV_OVERRIDES = ("CELERY_BROKER_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL")


def make_app(broker_url: str) -> Celery:
    for name in BROKER_ENV_OVERRIDES:
        os.environ.pop(name, None)
    app = Celery("ciaoweb-agent", broker=broker_url, include=["ciaoweb.agent.tasks"])
    app.conf.update(CELERY_COMMON)
    # A node's worker serves its own queue only; it never runs controller tasks.
    app.conf.task_create_missing_queues = True
    return app


def _configured_broker() -> str:
    try:
        return AgentConfig.from_env().broker_url
    except RuntimeError:
        return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


app = make_app(_configured_broker())
# The prefork pool's children die with the agent, even when it is SIGKILLed.
install_celery_hooks()
