from django.contrib import admin

from ciaoweb.operations.models import Operation


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    """Read-only: operations are driven by the controller, not edited by hand."""

    list_display = ["created", "kind", "state", "step", "instance_name", "host", "tenant"]
    list_filter = ["kind", "state", "step"]
    search_fields = ["instance_name", "error", "host__name"]
    list_select_related = ["host", "tenant"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
