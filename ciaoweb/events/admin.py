from django.contrib import admin

from ciaoweb.events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["created", "kind", "tenant", "object_type", "message"]
    list_filter = ["kind", "object_type"]
    search_fields = ["message", "object_id"]
    readonly_fields = ["tenant", "kind", "object_type", "object_id", "message", "data"]
