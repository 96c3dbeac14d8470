from django.apps import AppConfig


class OrchestrationConfig(AppConfig):
    name = "ciaoweb.orchestration"
    label = "orchestration"
