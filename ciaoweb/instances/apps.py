from django.apps import AppConfig


class InstancesConfig(AppConfig):
    name = "ciaoweb.instances"
    label = "instances"
