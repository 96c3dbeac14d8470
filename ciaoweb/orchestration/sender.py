"""The one place that puts node tasks on the broker.

`settings.CIAO_DISPATCH = "record"` (unit tests, no broker) keeps the signatures in
`recorded` instead, so tests can assert on what would have been sent.
"""

from __future__ import annotations

import logging

from celery import Signature
from django.conf import settings

from ciaoweb.celery import app

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
