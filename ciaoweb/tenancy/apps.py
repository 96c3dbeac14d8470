from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "ciaoweb.tenancy"
    label = "tenancy"
