from django.contrib import admin

from .models import DhcpServer


@admin.register(DhcpServer)
class DhcpServerAdmin(admin.ModelAdmin):
    list_display = ("network_key", "network", "host", "vf", "mac", "state")
    list_filter = ("state", "host")
    readonly_fields = ("network_key", "created", "updated")
