"""The one Celery app. Node tasks go to `node.<name>`, everything else to `controller`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ciaoweb.settings")

app = Celery("ciaoweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["ciaoweb.orchestration", "ciaoweb.agent"], related_name="tasks")
