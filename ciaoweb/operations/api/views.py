from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.operations.api.serializers import OperationSerializer
from ciaoweb.operations.filtersets import OperationFilterSet
from ciaoweb.operations.models import Operation


@extend_schema_view(
    list=extend_schema(
        description=(
            "Every create, migrate, delete, evacuate, restore, attach and detach, newest "
            "first. A member sees its tenant's; host-level ones are for cluster admins."
        )
    ),
)
class OperationViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Every create, migrate, delete, evacuate, restore, attach and detach, newest first.
    Members see their tenant's; cluster-wide ones (a host's evacuation) are admin-only."""

    queryset = Operation.objects.select_related("host", "source_host", "target_host").order_by(
        "-created"
    )
    serializer_class = OperationSerializer
    filterset_class = OperationFilterSet
