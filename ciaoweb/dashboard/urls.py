"""Dashboard pages at the stable URLs of DESIGN §3 (mounted at the site root)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from ciaoweb.dashboard.views import (
    events,
    hosts,
    instances,
    login,
    networks,
    overview,
    tenant,
    topology,
)

app_name = "dashboard"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("login/", login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tenant/", tenant.choose_tenant, name="choose-tenant"),
    path("topology/", topology.topology, name="topology"),
    path("networks/", networks.network_list, name="networks"),
    path("networks/<uuid:pk>/", networks.network_detail, name="network-detail"),
    path("networks/<uuid:pk>/delete/", networks.network_delete, name="network-delete"),
    path("instances/", instances.instance_list, name="instances"),
    path("instances/<uuid:pk>/", instances.instance_detail, name="instance-detail"),
    path("instances/<uuid:pk>/migrate/", instances.instance_migrate, name="instance-migrate"),
    path("instances/<uuid:pk>/delete/", instances.instance_delete, name="instance-delete"),
    path("instances/<uuid:pk>/attach/", instances.instance_attach, name="instance-attach"),
    path(
        "instances/<uuid:pk>/attachments/<uuid:attachment>/detach/",
        instances.attachment_detach,
        name="attachment-detach",
    ),
    path("hosts/", hosts.host_list, name="hosts"),
    path("hosts/<uuid:pk>/evacuate/", hosts.host_evacuate, name="host-evacuate"),
    path("hosts/<uuid:pk>/restore/", hosts.host_restore, name="host-restore"),
    path("events/", events.event_list, name="events"),
]
