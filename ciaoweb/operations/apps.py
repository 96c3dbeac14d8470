from django.apps import AppConfig

from ciaoweb.events.registry import register_live_type


class OperationsConfig(AppConfig):
    name = "ciaoweb.operations"
    label = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Serializers import models: only once the app registry is ready.
        from ciaoweb.operations.api.serializers import OperationSerializer

        # `operation.updated` to the operation's tenant; a host's (no tenant) to admins only.
        register_live_type("operation", OperationSerializer)
