"""ciaoweb: SR-IOV network orchestrator (controller, node agent, drivers)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
