from django.contrib import admin

from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "last_seen", "is_network_node", "mgmt_address"]
    list_filter = ["state", "is_network_node"]
    search_fields = ["name"]


@admin.register(PhysicalFunction)
class PhysicalFunctionAdmin(admin.ModelAdmin):
    list_display = ["name", "host", "physnet", "pci_address", "total_vfs", "num_vfs"]
    list_filter = ["physnet", "host"]
    search_fields = ["name", "pci_address", "host__name"]


@admin.register(VirtualFunction)
class VirtualFunctionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "state", "netdev", "pci_address", "mac", "vlan"]
    list_filter = ["state", "pf__physnet", "pf__host"]
    search_fields = ["netdev", "pci_address", "mac"]
