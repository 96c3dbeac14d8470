from rest_framework import serializers

from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction


class HostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "state",
            "last_seen",
            "is_network_node",
            "mgmt_address",
            "created",
            "updated",
        ]
        # State changes go through evacuate/restore and heartbeats.
        read_only_fields = ["state", "last_seen", "created", "updated"]


class PhysicalFunctionSerializer(serializers.ModelSerializer):
    free_vfs = serializers.IntegerField(read_only=True)

    class Meta:
        model = PhysicalFunction
        fields = [
            "id",
            "host",
            "name",
            "pci_address",
            "physnet",
            "total_vfs",
            "num_vfs",
            "free_vfs",
        ]


class VirtualFunctionSerializer(serializers.ModelSerializer):
    attachment = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = VirtualFunction
        fields = [
            "id",
            "pf",
            "index",
            "pci_address",
            "netdev",
            "state",
            "mac",
            "vlan",
            "attachment",
        ]
