"""Mounted at the site root (ciaoweb.urls): the paths probes and scrapers expect."""

from django.urls import path

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.MetricsView.as_view(), name="metrics"),
]
