from django.apps import AppConfig

from ciaoweb.events.registry import register_live_type


class InventoryConfig(AppConfig):
    name = "ciaoweb.inventory"
    label = "inventory"

    def ready(self) -> None:
        # Serializers import models: only once the app registry is ready.
        from ciaoweb.inventory.api.serializers import HostSerializer

        register_live_type("host", HostSerializer)  # no tenant: cluster admins only
