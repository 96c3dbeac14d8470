"""URLs: the REST API under /api/v1/, Django admin, and the dashboard when installed."""

import importlib.util

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from ciaoweb.events.api.urls import router as events_router
from ciaoweb.instances.api.urls import router as instances_router
from ciaoweb.inventory.api.urls import router as inventory_router
from ciaoweb.networks.api.urls import router as networks_router
from ciaoweb.operations.api.urls import router as operations_router
from ciaoweb.tenancy.api.auth import AuthTokenView
from ciaoweb.tenancy.api.urls import router as tenancy_router

api_router = DefaultRouter()
for app_router in (
    tenancy_router,
    inventory_router,
    networks_router,
    instances_router,
    operations_router,
    events_router,
):
    api_router.registry.extend(app_router.registry)

api_patterns = [
    path("auth/token/", AuthTokenView.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include(api_router.urls)),
]

urlpatterns = [
    path("api/v1/", include(api_patterns)),
    path("admin/", admin.site.urls),
    # /healthz, /readyz, /metrics (docs/operations.md)
    path("", include("ciaoweb.observability.urls")),
]

# The dashboard app is built separately; mount it when its urls module exists.
if importlib.util.find_spec("ciaoweb.dashboard.urls") is not None:
    urlpatterns.append(path("", include("ciaoweb.dashboard.urls")))
