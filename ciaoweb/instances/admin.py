from django.contrib import admin

from ciaoweb.instances.models import Attachment, Instance


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ["ifname", "network", "mac", "ip", "ip_source", "state", "vf"]
    readonly_fields = fields


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "kind", "host", "state", "generation"]
    list_filter = ["state", "kind", "host"]
    search_fields = ["name", "tenant__name"]
    inlines = [AttachmentInline]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ["__str__", "network", "mac", "ip", "ip_source", "state", "vf"]
    list_filter = ["state", "ip_source"]
    search_fields = ["mac", "ip", "instance__name"]
