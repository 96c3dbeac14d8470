from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "ciaoweb.dashboard"
    label = "dashboard"
