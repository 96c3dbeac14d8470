"""Abstract base models shared by every app."""

import uuid

from django.db import models


class BaseModel(models.Model):
    """UUID primary key (ids are public in the API) and created/updated timestamps."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["created"]
