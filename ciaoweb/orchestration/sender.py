"""The one place that puts node tasks on the broker.

`settings.CIAO_DISPATCH = "record"` (unit tests, no broker) keeps the signatures in
`recorded` instead, so tests can assert on what would have been sent.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery import Signature
from django.conf import settings
from redis import RedisError

from ciaoweb.celery import app
from ciaoweb.core.liveness import redis_client
from ciaoweb.taskrouting import node_queue

log = logging.getLogger(__name__)

recorded: list[Signature] = []


def signature(task_name: str, node: str, **kwargs) -> Signature:
    """An immutable signature of a node task (routing reads `node`)."""
    return app.signature(task_name, kwargs={"node": node, **kwargs}, immutable=True)


def send(sig: Signature) -> None:
    if settings.CIAO_DISPATCH == "record":
        recorded.append(sig)
        return
    sig.apply_async()


@functools.cache
def broker() -> Any:
    """A redis-py client of the broker, as this process' broker user (its ACL allows the
    agents' liveness keys and LLEN on the node queues)."""
    return redis_client(settings.CELERY_BROKER_URL)


def queue_is_idle(node: str) -> bool:
    """No task waits in `node`'s queue. False when the broker cannot tell, and without one
    (`record`)."""
    if settings.CIAO_DISPATCH == "record":
        return False
    try:
        return broker().llen(node_queue(node)) == 0
    except RedisError:
        log.warning("could not read the length of %s's queue", node, exc_info=True)
        return False
