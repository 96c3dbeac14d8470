from django.apps import AppConfig


class LocalclusterConfig(AppConfig):
    name = "ciaoweb.localcluster"
    label = "localcluster"
    verbose_name = "Local cluster (demo and end-to-end tests)"
