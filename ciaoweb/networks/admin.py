from django.contrib import admin

from ciaoweb.networks.models import IPAllocation, Lease, Network


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "kind", "physnet", "vlan", "cidr", "ipam", "shared"]
    list_filter = ["kind", "ipam", "shared", "physnet"]
    search_fields = ["name", "cidr", "tenant__name"]


@admin.register(IPAllocation)
class IPAllocationAdmin(admin.ModelAdmin):
    list_display = ["ip", "network", "purpose", "attachment"]
    list_filter = ["purpose"]
    search_fields = ["ip", "network__name"]


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["mac", "ip", "hostname", "network", "state", "expires_at"]
    list_filter = ["state"]
    search_fields = ["mac", "ip", "hostname"]
