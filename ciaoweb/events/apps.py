from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "ciaoweb.events"
    label = "events"
