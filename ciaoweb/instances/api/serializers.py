import uuid
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from ciaoweb.core.api.fields import MacAddressField
from ciaoweb.core.validators import validate_dns_label
from ciaoweb.instances.choices import InstanceKind
from ciaoweb.instances.models import MAX_NETWORKS, Attachment, Instance
from ciaoweb.inventory.models import Host
from ciaoweb.networks.models import Network
from ciaoweb.operations.api.serializers import OperationSummarySerializer, latest_operation
from ciaoweb.tenancy.models import Tenant


class AttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attachment
        fields = [
            "id",
            "instance",
            "network",
            "ifname",
            "mac",
            "ip",
            "ip_source",
            "ipv6",
            "ipv6_source",
            "state",
            "vf",
            "created",
            "updated",
        ]
        extra_kwargs = {
            "instance": {"help_text": "the instance this interface belongs to"},
            "network": {"help_text": "the network it is plugged into"},
            "ifname": {"help_text": "its name inside the instance: eth0 (overlay), eth1..."},
            "mac": {"help_text": "its MAC, kept across migration"},
            "ip": {"help_text": "its IPv4 address; null until known (dynamic, underlay)"},
            "ip_source": {
                "help_text": "where the IP comes from: allocated by the `controller`, "
                "learned from a `dhcp` lease, reported from the `underlay`'s DHCP, or "
                "`unknown` (a VM on an underlay network)"
            },
            "ipv6": {
                "help_text": "its IPv6 address on a dual-stack network (null on IPv4-only "
                "ones, and while unknown: underlay)"
            },
            "ipv6_source": {
                "help_text": "where the IPv6 comes from: reserved by the `controller` (dhcpv6), "
                "the MAC's EUI-64 (`slaac`), a `dhcp` lease, reported from the `underlay`, or "
                "`unknown` (a VM on an underlay network); empty on IPv4-only networks"
            },
            "state": {"help_text": "`active` once its host's agent has plugged it"},
            "vf": {"help_text": "the virtual function it holds (SR-IOV networks); null on overlay"},
        }


class InstanceSerializer(serializers.ModelSerializer):
    """The read representation (REST and websocket)."""

    attachments = AttachmentSerializer(
        many=True, read_only=True, help_text="its interfaces, eth0 first"
    )
    host_name = serializers.CharField(
        source="host.name", read_only=True, allow_null=True, help_text="the host's name"
    )
    host_state = serializers.CharField(
        source="host.state",
        read_only=True,
        allow_null=True,
        help_text="its host's state: `offline` means its agent stopped beating and the "
        "instance may be unreachable (evacuate the host to move it)",
    )
    operation = serializers.SerializerMethodField(help_text="its latest operation")

    class Meta:
        model = Instance
        fields = [
            "id",
            "tenant",
            "name",
            "kind",
            "host",
            "host_name",
            "host_state",
            "state",
            "error",
            "netns",
            "generation",
            "attachments",
            "operation",
            "created",
            "updated",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "tenant": {"help_text": "the tenant it belongs to"},
            "name": {"help_text": "a DNS label, unique in the tenant: its hostname"},
            "host": {"help_text": "the host it runs on; null until placed"},
            "state": {"help_text": "`pending` → `provisioning` → `running`; `error` says why"},
            "error": {"help_text": "what went wrong, for an instance in `error`"},
            "netns": {
                "help_text": "its network namespace on the host (what a container runtime joins)"
            },
            "generation": {
                "help_text": "counts the changes of its desired state: grows with each "
                "migration, hot-plug and deletion"
            },
        }

    @extend_schema_field(OperationSummarySerializer(allow_null=True))
    def get_operation(self, instance: Instance) -> dict | None:
        """Its latest operation (prefetch it for lists: `prefetch_latest_operation`)."""
        operation = latest_operation(instance)
        return OperationSummarySerializer(operation).data if operation else None


def resolve_host(value: str) -> Host:
    """`host` is a host's id or its name."""
    host = Host.objects.filter(name=value).first()
    if host is None:
        try:
            host = Host.objects.filter(pk=uuid.UUID(value)).first()
        except ValueError:  # neither a known name nor a UUID
            host = None
    if host is None:
        raise serializers.ValidationError(f"host {value!r} does not exist")
    return host


@extend_schema_serializer(component_name="InstanceNetwork")
class NetworkRequestSerializer(serializers.Serializer):
    network = serializers.PrimaryKeyRelatedField(
        queryset=Network.objects.all(),
        help_text="an SR-IOV network of the instance's tenant, or a shared one",
    )
    mac = MacAddressField(
        required=False,
        help_text="a unicast MAC, unique; default: a random locally administered one",
    )
    ip = serializers.IPAddressField(
        protocol="IPv4",
        required=False,
        help_text="an address of a `controller` network's CIDR; default: the first free one",
    )
    ipv6 = serializers.IPAddressField(
        protocol="IPv6",
        required=False,
        help_text="an IPv6 address of a dual-stack `dhcpv6` network's prefix (from ::10, "
        "not its top 128); default: the first free one. On `slaac` networks the address "
        "is the EUI-64 of the MAC",
    )

    def validate_mac(self, value: str) -> str:
        if Attachment.objects.filter(mac=value).exists():
            raise serializers.ValidationError(f"MAC {value} is already in use")
        return value


@extend_schema_serializer(
    component_name="AttachmentCreate",
    examples=[
        OpenApiExample(
            "A VF on an SR-IOV network, its address from the network",
            value={"network": "3f0c6a4e-2b6d-4d6f-9a57-0d8f5c1e7b21"},
            request_only=True,
        ),
        OpenApiExample(
            "With a fixed MAC and IP",
            value={
                "network": "3f0c6a4e-2b6d-4d6f-9a57-0d8f5c1e7b21",
                "mac": "02:00:00:00:10:07",
                "ip": "192.168.10.7",
            },
            request_only=True,
        ),
    ],
)
class AttachmentCreateSerializer(NetworkRequestSerializer):
    """`POST instances/{id}/attachments/ {network, mac?, ip?}`: the MAC and IP rules of a
    launch's `networks` items; the view looks the network up (unknown to the requester:
    404, as another tenant's objects are)."""

    network = serializers.UUIDField(
        help_text="an SR-IOV network of the instance's tenant, or a shared one"
    )


# At most MAX_NETWORKS `networks` per instance (ciaoweb.instances.models); beyond it a
# request is a 400 before any of its items is looked at.


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A container on an SR-IOV network",
            value={
                "name": "web",
                "kind": "container",
                "networks": [{"network": "3f0c6a4e-2b6d-4d6f-9a57-0d8f5c1e7b21"}],
            },
            request_only=True,
        ),
        OpenApiExample(
            "A VM with a fixed MAC and IP, placed by an admin",
            value={
                "name": "db",
                "kind": "vm",
                "tenant": "6b1f0d52-8a3e-4c1b-b0f4-51a9d2c7e8a0",
                "host": "node1",
                "networks": [
                    {
                        "network": "3f0c6a4e-2b6d-4d6f-9a57-0d8f5c1e7b21",
                        "mac": "02:00:00:00:10:05",
                        "ip": "192.168.10.5",
                    }
                ],
            },
            request_only=True,
        ),
    ]
)
class InstanceCreateSerializer(serializers.Serializer):
    """`{name, kind, networks: [{network, mac?, ip?}], host?, tenant?}`; the view decides
    who may set `host` and `tenant` and passes the acting tenant in context `tenant`."""

    name = serializers.CharField(
        max_length=63,
        validators=[validate_dns_label],
        help_text="a DNS label, unique in the tenant: the instance's hostname",
    )
    kind = serializers.ChoiceField(
        choices=InstanceKind.CHOICES, help_text="a `container` (a network namespace) or a `vm`"
    )
    networks = NetworkRequestSerializer(
        many=True,
        required=False,
        default=list,
        max_length=MAX_NETWORKS,
        help_text=f"an interface each (eth1, eth2...) after the overlay eth0; at most "
        f"{MAX_NETWORKS}",
    )
    host = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="a host's id or name (cluster admins only); default: the scheduler picks",
    )
    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.all(),
        required=False,
        allow_null=True,
        help_text="the tenant (cluster admins must give it; a member acts for its own)",
    )

    def to_internal_value(self, data):
        """Too many networks is one message on `networks`, before any item is validated."""
        if isinstance(data, dict) and isinstance(data.get("networks"), list):
            if (count := len(data["networks"])) > MAX_NETWORKS:
                raise serializers.ValidationError(
                    {"networks": [f"at most {MAX_NETWORKS} networks per instance, got {count}"]}
                )
        return super().to_internal_value(data)

    def validate_host(self, value: str | None) -> Host | None:
        return resolve_host(value) if value else None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tenant = attrs.get("tenant") or self.context.get("tenant")
        if tenant is None:
            raise serializers.ValidationError(
                {"tenant": ["required: say which tenant the instance belongs to"]}
            )
        attrs["tenant"] = tenant
        if Instance.objects.filter(tenant=tenant, name=attrs["name"]).exists():
            raise serializers.ValidationError(
                {"name": [f"an instance named {attrs['name']} already exists in {tenant}"]}
            )
        errors: list[dict] = []
        macs: set[str] = set()
        for item in attrs["networks"]:
            problems: dict[str, list[str]] = {}
            network = item["network"]
            if network.tenant_id not in (None, tenant.pk) and not network.shared:
                problems["network"] = [f"network {network.pk} is not available to {tenant}"]
            if mac := item.get("mac"):
                if mac in macs:
                    problems["mac"] = [f"MAC {mac} is requested twice"]
                macs.add(mac)
            errors.append(problems)
        if any(errors):
            raise serializers.ValidationError({"networks": errors})
        return attrs


class MigrateSerializer(serializers.Serializer):
    """`POST instances/{id}/migrate/ {host?}`: a host's id or name (admins only)."""

    host = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=253,
        help_text="a host's id or name (cluster admins only); default: the scheduler picks",
    )
