from typing import Any

from django.apps import AppConfig

from ciaoweb.events.registry import register_live_type


def _attachment_tenant(attachment) -> Any:
    return attachment.instance.tenant_id


class InstancesConfig(AppConfig):
    name = "ciaoweb.instances"
    label = "instances"

    def ready(self) -> None:
        # Serializers import models: only once the app registry is ready.
        from ciaoweb.instances.api.serializers import AttachmentSerializer, InstanceSerializer

        register_live_type("instance", InstanceSerializer)
        register_live_type("attachment", AttachmentSerializer, tenant_of=_attachment_tenant)
