from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "ciaoweb.networks"
    label = "networks"
