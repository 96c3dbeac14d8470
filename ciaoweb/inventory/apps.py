from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "ciaoweb.inventory"
    label = "inventory"
