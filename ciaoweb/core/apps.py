from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "ciaoweb.core"
    label = "core"
