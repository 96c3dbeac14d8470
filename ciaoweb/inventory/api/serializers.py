from collections.abc import Mapping

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction
from ciaoweb.orchestration.choices import DhcpServerState


class HostDhcpServerSerializer(serializers.Serializer):
    """One managed network's DHCP/DNS server (dnsmasq) that runs on the host."""

    network = serializers.UUIDField(
        read_only=True, help_text="the network's id (kept while a deleted network's server stops)"
    )
    network_name = serializers.CharField(
        read_only=True, allow_null=True, help_text="null once the network is deleted"
    )
    state = serializers.ChoiceField(choices=DhcpServerState.CHOICES, read_only=True)

    def to_representation(self, server) -> dict:
        if isinstance(server, Mapping):  # already represented (an enrolment re-serialises)
            return dict(server)
        try:
            network = server.network
        except ObjectDoesNotExist:  # deleted after this row was read (a host.updated sent late)
            network = None
        return {
            "network": str(server.network_key),
            "network_name": network.name if network is not None else None,
            "state": server.state,
        }


class HostSerializer(serializers.ModelSerializer):
    agent_version = serializers.CharField(
        read_only=True,
        help_text="what the host's agent reported with its inventory; empty until then",
    )
    # The reverse of orchestration's DhcpServer.host (prefetched by HostViewSet).
    dhcp_servers = HostDhcpServerSerializer(many=True, read_only=True)

    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "state",
            "last_seen",
            "is_network_node",
            "mgmt_address",
            "agent_version",
            "dhcp_servers",
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


# A PF's SR-IOV capability counts VFs in 16 bits.
MAX_VFS = 65535


class PhysicalFunctionSerializer(serializers.ModelSerializer):
    free_vfs = serializers.IntegerField(read_only=True, help_text="its VFs in state `free`")
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
        extra_kwargs = {
            "name": {"help_text": "its netdev on the host, e.g. ens1f0"},
            "physnet": {"help_text": "the physical network it is cabled to"},
            # Explicit bounds (PCIe's TotalVFs is 16 bits): else the schema would carry
            # the database's integer range, and differ between PostgreSQL and SQLite.
            "total_vfs": {
                "help_text": "the most VFs it can have (sriov_totalvfs)",
                "max_value": MAX_VFS,
            },
            "num_vfs": {"help_text": "the VFs enabled (sriov_numvfs)", "max_value": MAX_VFS},
        }


class VirtualFunctionSerializer(serializers.ModelSerializer):
    attachment = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="the attachment holding it, if any"
    )

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
        extra_kwargs = {
            "index": {"help_text": "its number on the PF (virtfnN)", "max_value": MAX_VFS - 1},
            "mac": {"help_text": "the MAC programmed on it; empty when free"},
            "vlan": {"help_text": "the VLAN programmed on it; null when free", "max_value": 4094},
        }
