import ipaddress
from functools import reduce

from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Cast, StrIndex, Substr

from ciaoweb.core.exceptions import register_constraint_message
from ciaoweb.core.models import BaseModel
from ciaoweb.core.validators import DNS_LABEL_PATTERN, validate_dns_label
from ciaoweb.networks.choices import Ipam, IpPurpose, Ipv6Mode, LeaseState, NetworkKind
from ciaoweb.networks.ipv6 import server_address

VLAN_MIN, VLAN_MAX = 1, 4094
MTU_MIN, MTU_MAX = 576, 9216
PRIMARY_NETWORK_NAME = "default"


class IPv4SortKey(models.Func):
    """An IPv4 address field as its 32-bit number, to sort by: SQLite keeps the address as
    text, where 10.1.0.10 sorts before 10.1.0.2. PostgreSQL's inet minus 0.0.0.0 is that
    number; on SQLite each octet is read off the text (CAST takes a leading integer)."""

    arity = 1
    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        text, octets = self.source_expressions[0], []
        for _ in range(3):
            octets.append(Cast(text, models.BigIntegerField()))
            text = Substr(text, StrIndex(text, Value(".")) + 1)
        octets.append(Cast(text, models.BigIntegerField()))
        number = reduce(lambda high, low: high * 256 + low, octets)
        return compiler.compile(number.resolve_expression(compiler.query))

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"({sql} - '0.0.0.0'::inet)", params


class Network(BaseModel):
    tenant = models.ForeignKey(
        "tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="networks"
    )
    name = models.CharField(max_length=63, validators=[validate_dns_label])
    kind = models.CharField(max_length=16, choices=NetworkKind.CHOICES)
    physnet = models.CharField(max_length=64, blank=True)  # empty for overlay
    vlan = models.PositiveIntegerField(null=True, blank=True)  # null for overlay
    cidr = models.CharField(max_length=18)
    gateway = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    mtu = models.PositiveIntegerField(default=1500)
    dns_domain = models.CharField(max_length=253, blank=True)
    ipam = models.CharField(max_length=16, choices=Ipam.CHOICES, default=Ipam.CONTROLLER)
    shared = models.BooleanField(default=False)
    # Dual stack (optional): the IPv6 prefix and how instances get their address in it.
    ipv6_cidr = models.CharField(max_length=43, blank=True)
    ipv6_mode = models.CharField(max_length=8, choices=Ipv6Mode.CHOICES, blank=True)
    # The tenant's overlay network `default`, always eth0; exactly one per tenant.
    is_primary = models.BooleanField(default=False, editable=False)

    class Meta(BaseModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], name="networks_network_unique_tenant_name"
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(tenant__isnull=True),
                name="networks_network_unique_shared_name",
            ),
            models.UniqueConstraint(
                fields=["physnet", "vlan"],
                condition=Q(kind=NetworkKind.SRIOV),
                name="networks_network_unique_physnet_vlan",
            ),
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(is_primary=True),
                name="networks_network_one_primary_per_tenant",
            ),
            models.CheckConstraint(
                condition=Q(name__regex=rf"^{DNS_LABEL_PATTERN}$"),
                name="networks_network_name_dns_label",
            ),
            models.CheckConstraint(
                condition=Q(vlan__isnull=True) | Q(vlan__gte=VLAN_MIN, vlan__lte=VLAN_MAX),
                name="networks_network_vlan_range",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind=NetworkKind.SRIOV, vlan__isnull=False) & ~Q(physnet="")
                    | Q(kind=NetworkKind.OVERLAY, vlan__isnull=True, physnet="")
                ),
                name="networks_network_kind_fields",
            ),
            models.CheckConstraint(
                condition=Q(is_primary=False)
                | Q(kind=NetworkKind.OVERLAY, tenant__isnull=False, name=PRIMARY_NETWORK_NAME),
                name="networks_network_primary_is_tenant_overlay",
            ),
            models.CheckConstraint(
                condition=Q(tenant__isnull=False) | Q(shared=True),
                name="networks_network_tenantless_is_shared",
            ),
            models.CheckConstraint(
                condition=Q(ipam__in=[i for i, _ in Ipam.CHOICES]),
                name="networks_network_ipam_valid",
            ),
            models.CheckConstraint(
                condition=Q(mtu__gte=MTU_MIN, mtu__lte=MTU_MAX), name="networks_network_mtu_range"
            ),
            models.CheckConstraint(
                condition=Q(ipv6_cidr="", ipv6_mode="")
                | Q(~Q(ipv6_cidr=""), ipv6_mode__in=[m for m, _ in Ipv6Mode.CHOICES]),
                name="networks_network_ipv6_mode_iff_cidr",
            ),
        ]

    def __str__(self) -> str:
        # A shared network is every tenant's to see: its name never says who owns it
        # (event messages and pages of other tenants show it).
        owner = self.tenant.name if self.tenant_id and not self.shared else "shared"
        return f"{owner}/{self.name}"

    @property
    def ip_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    @property
    def dhcp_server_ip(self) -> str | None:
        """The address our DHCP/DNS server takes on a managed network: the last usable one."""
        if self.ipam not in Ipam.MANAGED:
            return None
        return str(self.ip_network.broadcast_address - 1)

    @property
    def ipv6_network(self) -> ipaddress.IPv6Network | None:
        return ipaddress.IPv6Network(self.ipv6_cidr) if self.ipv6_cidr else None

    @property
    def dhcp_server_ipv6(self) -> str | None:
        """Our DHCP/DNS server's IPv6 address on a managed dual-stack network."""
        if self.ipam not in Ipam.MANAGED or not self.ipv6_cidr:
            return None
        return server_address(self.ipv6_network)


class IPAllocation(BaseModel):
    """The controller's ledger of taken addresses; the unique constraint is the lock of last
    resort against duplicate IPs. `ip_int` lets the database find the lowest gap."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="allocations")
    ip = models.GenericIPAddressField(protocol="IPv4")
    ip_int = models.BigIntegerField()
    purpose = models.CharField(max_length=16, choices=IpPurpose.CHOICES)
    attachment = models.OneToOneField(
        "instances.Attachment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="ip_allocation",
    )

    class Meta(BaseModel.Meta):
        ordering = ["network", "ip_int"]
        verbose_name = "IP allocation"
        constraints = [
            models.UniqueConstraint(
                fields=["network", "ip_int"], name="networks_ipallocation_unique_network_ip"
            ),
            models.CheckConstraint(
                condition=Q(purpose=IpPurpose.ATTACHMENT, attachment__isnull=False)
                | Q(~Q(purpose=IpPurpose.ATTACHMENT), attachment__isnull=True),
                name="networks_ipallocation_attachment_iff_purpose",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ip} on {self.network} ({self.purpose})"


class FreeIPRange(models.Model):
    """A run [first, last] of free addresses of a network, as integers, so that allocating
    the lowest one reads one row however full the network is. The union of a network's
    ranges is its usable host range minus its IPAllocation rows (networks.free_ranges)."""

    # No index of its own: the unique (network, first) index serves network lookups.
    network = models.ForeignKey(
        Network, on_delete=models.CASCADE, related_name="free_ranges", db_index=False
    )
    first = models.BigIntegerField()
    last = models.BigIntegerField()

    class Meta:
        verbose_name = "free IP range"
        constraints = [
            models.UniqueConstraint(
                fields=["network", "first"], name="networks_freeiprange_unique_network_first"
            ),
            models.CheckConstraint(
                condition=Q(first__lte=models.F("last")), name="networks_freeiprange_first_le_last"
            ),
        ]

    def __str__(self) -> str:
        return f"{ipaddress.IPv4Address(self.first)}-{ipaddress.IPv4Address(self.last)} free"


class Lease(BaseModel):
    """A DHCP lease as reported by a DHCP server (ours or the underlay's)."""

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="leases")
    mac = models.CharField(max_length=17)
    ip = models.GenericIPAddressField(protocol="IPv4")
    hostname = models.CharField(max_length=253, blank=True)
    state = models.CharField(max_length=16, choices=LeaseState.CHOICES, default=LeaseState.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    attachment = models.ForeignKey(
        "instances.Attachment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leases",
    )

    class Meta(BaseModel.Meta):
        ordering = ["network", IPv4SortKey("ip").asc()]
        constraints = [
            models.UniqueConstraint(
                fields=["network", "mac"], name="networks_lease_unique_network_mac"
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s for s, _ in LeaseState.CHOICES]),
                name="networks_lease_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mac} -> {self.ip} ({self.state})"


register_constraint_message(
    "networks_network_unique_tenant_name", "a network with this name already exists in the tenant"
)
register_constraint_message(
    "networks_network_unique_shared_name", "a shared network with this name already exists"
)
register_constraint_message(
    "networks_network_unique_physnet_vlan", "this VLAN is already used on this physnet"
)
register_constraint_message(
    "networks_network_one_primary_per_tenant", "the tenant already has its primary network"
)
register_constraint_message(
    "networks_ipallocation_unique_network_ip", "this IP address is already taken on the network"
)
