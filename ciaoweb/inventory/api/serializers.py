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


class CredentialSerializer(serializers.Serializer):
    node = serializers.CharField()
    secret = serializers.CharField(help_text="shown once: store it as the agent's 0600 file")


class EnrolledHostSerializer(HostSerializer):
    """The answer to an enrolment: the host, its credential and its broker user."""

    credential = CredentialSerializer(read_only=True)
    broker_user = serializers.CharField(read_only=True)

    class Meta(HostSerializer.Meta):
        fields = [*HostSerializer.Meta.fields, "credential", "broker_user"]


class PhysicalFunctionSerializer(serializers.ModelSerializer):
    free_vfs = serializers.IntegerField(read_only=True)
    capabilities = serializers.DictField(
        child=serializers.BooleanField(),
        read_only=True,
        help_text=(
            "optional knobs of the PF's driver, as its agent probed them: link_state, "
            "min_tx_rate, vlan_8021ad -> true/false (igb: all false); a knob left out is "
            "not known yet ({} until the PF has a VF)"
        ),
    )

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
            "capabilities",
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
