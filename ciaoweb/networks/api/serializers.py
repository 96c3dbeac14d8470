from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from ciaoweb.core.api.exceptions import as_validation_error
from ciaoweb.core.exceptions import InvalidInput
from ciaoweb.core.validators import validate_dns_domain, validate_dns_label
from ciaoweb.networks import services
from ciaoweb.networks.choices import Ipam, Ipv6Mode, NetworkKind
from ciaoweb.networks.ipv6 import DHCPV6_PREFIX_MAX, DHCPV6_PREFIX_MIN
from ciaoweb.networks.models import MTU_MAX, MTU_MIN, VLAN_MAX, VLAN_MIN, Lease, Network
from ciaoweb.networks.validation import parse_cidr, parse_ipv6_cidr, validate_network
from ciaoweb.networks.vlans import next_free_vlan
from ciaoweb.tenancy.access import is_cluster_admin, tenant_of
from ciaoweb.tenancy.models import Tenant

VLAN_MESSAGE = f"VLAN must be between {VLAN_MIN} and {VLAN_MAX}"
MTU_MESSAGE = f"MTU must be between {MTU_MIN} and {MTU_MAX}"
UNDERLAY_VLAN_MESSAGE = (
    "an underlay network needs an explicit VLAN (the one the physical network's DHCP serves)"
)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "An SR-IOV network (VLAN from the physnet's range)",
            value={
                "name": "data",
                "kind": "sriov",
                "physnet": "physnet1",
                "cidr": "192.168.10.0/24",
                "ipam": "controller",
                "dns_domain": "acme.example",
            },
            request_only=True,
        ),
        OpenApiExample(
            "A dual-stack network: IPv6 by SLAAC (the MAC's EUI-64, known before boot)",
            value={
                "name": "web",
                "kind": "sriov",
                "physnet": "physnet1",
                "cidr": "192.168.20.0/24",
                "ipv6_cidr": "fd00:20::/64",
                "ipv6_mode": "slaac",
            },
            request_only=True,
        ),
        OpenApiExample(
            "A shared provider network, by a cluster admin",
            value={
                "name": "public",
                "kind": "sriov",
                "physnet": "physnet1",
                "vlan": 300,
                "cidr": "172.16.0.0/24",
                "ipam": "dynamic",
                "tenant": None,
                "shared": True,
            },
            request_only=True,
        ),
    ]
)
class NetworkSerializer(serializers.ModelSerializer):
    """Members get their tenant from the view (context `tenant`); admins may set `tenant`
    (null = a shared network) and `shared`."""

    tenant = serializers.PrimaryKeyRelatedField(
        queryset=Tenant.objects.all(),
        required=False,
        allow_null=True,
        help_text="the owning tenant (cluster admins only; null: a shared network); a "
        "member's network is its tenant's",
    )
    name = serializers.CharField(
        max_length=63,
        validators=[validate_dns_label],
        help_text="a DNS label, unique in the tenant",
    )
    kind = serializers.ChoiceField(
        choices=NetworkKind.CHOICES,
        help_text="`sriov`: a VLAN on a physnet, a VF per instance; `overlay` is the "
        "tenant's `default` only",
    )
    ipam = serializers.ChoiceField(
        choices=Ipam.CHOICES,
        default=Ipam.CONTROLLER,
        help_text="`controller`: the controller picks each IP, known before boot; `dynamic`: "
        "the network's DHCP server leases from a range; `underlay`: the physical network's "
        "own DHCP (cluster admins, with an explicit vlan)",
    )
    physnet = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="the physical network whose PFs carry the VLAN",
    )
    vlan = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=VLAN_MIN,
        max_value=VLAN_MAX,
        error_messages={"min_value": VLAN_MESSAGE, "max_value": VLAN_MESSAGE},
        help_text="the 802.1Q VLAN, unique per physnet; set by cluster admins only, else the "
        "lowest free one of the physnet's tenant range",
    )
    cidr = serializers.CharField(max_length=18, help_text="the IPv4 subnet, /8 to /30")
    gateway = serializers.IPAddressField(
        protocol="IPv4",
        required=False,
        allow_null=True,
        help_text="inside the cidr; default on managed networks: the first usable address",
    )
    mtu = serializers.IntegerField(
        required=False,
        min_value=MTU_MIN,
        max_value=MTU_MAX,
        error_messages={"min_value": MTU_MESSAGE, "max_value": MTU_MESSAGE},
        help_text="default 1500",
    )
    dns_domain = serializers.CharField(
        max_length=253,
        required=False,
        allow_blank=True,
        validators=[validate_dns_domain],
        help_text="the domain the network's DNS server answers: `<instance>.<dns_domain>`",
    )
    shared = serializers.BooleanField(
        required=False, help_text="usable by every tenant (cluster admins only)"
    )
    ipv6_cidr = serializers.CharField(
        max_length=43,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="the IPv6 prefix of a dual-stack network (empty: IPv4 only; overlay "
        f"networks are IPv4-only): a /64 for slaac, /{DHCPV6_PREFIX_MIN} to "
        f"/{DHCPV6_PREFIX_MAX} for dhcpv6",
    )
    ipv6_mode = serializers.ChoiceField(
        choices=Ipv6Mode.CHOICES,
        required=False,
        allow_blank=True,
        help_text="`dhcpv6` (the default with an ipv6_cidr): the controller reserves each "
        "address and the network's DHCP server serves it; `slaac`: the server announces "
        "the /64 and the address is the EUI-64 of the MAC; empty without ipv6_cidr",
    )

    class Meta:
        model = Network
        fields = [
            "id",
            "tenant",
            "name",
            "kind",
            "physnet",
            "vlan",
            "cidr",
            "gateway",
            "mtu",
            "dns_domain",
            "ipam",
            "shared",
            "ipv6_cidr",
            "ipv6_mode",
            "is_primary",
            "created",
            "updated",
        ]
        read_only_fields = ["is_primary", "created", "updated"]
        extra_kwargs = {"is_primary": {"help_text": "the tenant's overlay `default`"}}
        validators = []  # uniqueness is checked in validate() with readable messages

    def _requester(self):
        request = self.context.get("request")
        return getattr(request, "user", None)

    def to_representation(self, instance: Network) -> dict[str, Any]:
        """A shared network another tenant owns shows members no owner (`tenant` null):
        its owner's id is not theirs to know. Admins, and the owner, see it."""
        data = super().to_representation(instance)
        user = self._requester()
        if user is not None and instance.shared and not is_cluster_admin(user):
            mine = tenant_of(user)
            if mine is None or instance.tenant_id != mine.pk:
                data["tenant"] = None
        return data

    def validate_cidr(self, value: str) -> str:
        try:
            return str(parse_cidr(value.strip()))
        except InvalidInput as exc:  # DRF puts only its own ValidationError on the field
            raise as_validation_error(exc) from None

    def validate_ipv6_cidr(self, value: str | None) -> str:
        if not (value or "").strip():
            return ""
        try:
            return str(parse_ipv6_cidr(value.strip()))
        except InvalidInput as exc:
            raise as_validation_error(exc) from None

    @staticmethod
    def _default_ipv6_mode(attrs: dict[str, Any], proposed: dict[str, Any]) -> None:
        """dhcpv6 unless said otherwise for a dual-stack network; no mode without a prefix
        (a prefix removed on update takes its mode with it)."""
        if proposed.get("ipv6_cidr") and not proposed.get("ipv6_mode"):
            proposed["ipv6_mode"] = attrs["ipv6_mode"] = Ipv6Mode.DHCPV6
        elif not proposed.get("ipv6_cidr") and "ipv6_mode" not in attrs:
            proposed["ipv6_mode"] = attrs["ipv6_mode"] = ""

    def _proposed(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The network as it would be after this request (defaults or current values)."""
        if self.instance is not None:
            current = {f: getattr(self.instance, f) for f in self.Meta.fields if f != "id"}
            current["tenant"] = self.instance.tenant
            return {**current, **attrs}
        proposed = {
            "physnet": "",
            "vlan": None,
            "mtu": 1500,
            "dns_domain": "",
            "shared": False,
            "ipv6_cidr": "",
            "ipv6_mode": "",
        }
        proposed.update(attrs)
        if "tenant" in self.context:  # a member: its own tenant, whatever it sent
            proposed["tenant"] = self.context["tenant"]
        proposed.setdefault("tenant", None)
        return proposed

    def _member_moves_physnet(self, proposed: dict[str, Any]) -> bool:
        """A member's network moving (unused) to another physnet: it gets a VLAN of that
        physnet's tenant range, never keeps one the range did not give it there."""
        network = self.instance
        return bool(
            self.context.get("allocate_vlan")
            and network is not None
            and network.kind == NetworkKind.SRIOV
            and proposed.get("physnet")
            and proposed["physnet"] != network.physnet
            and not network.attachments.exists()
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        proposed = self._proposed(attrs)
        if (
            self.instance is None
            and proposed.get("ipam") == Ipam.UNDERLAY
            and proposed.get("vlan") is None
        ):
            raise serializers.ValidationError({"vlan": [UNDERLAY_VLAN_MESSAGE]})
        if self._member_moves_physnet(proposed):
            proposed["vlan"] = attrs["vlan"] = next_free_vlan(proposed["physnet"])
        if proposed.get("gateway") is None and proposed.get("ipam") in Ipam.MANAGED:
            proposed["gateway"] = None  # chosen by the service: first usable address
        self._default_ipv6_mode(attrs, proposed)
        try:
            validate_network(
                proposed, self.instance, names_others=is_cluster_admin(self._requester())
            )
        except InvalidInput as exc:
            raise as_validation_error(exc) from None
        name_clash = Network.objects.filter(tenant=proposed["tenant"], name=proposed["name"])
        if self.instance is not None:
            name_clash = name_clash.exclude(pk=self.instance.pk)
        if name_clash.exists():
            owner = proposed["tenant"] or "the shared networks"
            raise serializers.ValidationError(
                {"name": [f"a network named {proposed['name']} already exists in {owner}"]}
            )
        if self.instance is None:
            return {f: proposed[f] for f in proposed if f in self.fields and f != "is_primary"}
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Network:
        return services.create_network(**validated_data)

    def update(self, instance: Network, validated_data: dict[str, Any]) -> Network:
        return services.update_network(instance, validated_data)


class LeaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lease
        fields = [
            "id",
            "network",
            "mac",
            "ip",
            "hostname",
            "state",
            "expires_at",
            "attachment",
            "created",
            "updated",
        ]
        extra_kwargs = {
            "mac": {"help_text": "the client's MAC"},
            "ip": {"help_text": "the leased IPv4 address"},
            "hostname": {"help_text": "the name the client sent, if any"},
            "expires_at": {"help_text": "when the lease ends unless renewed"},
            "attachment": {"help_text": "the attachment with this MAC on the network, if any"},
        }
