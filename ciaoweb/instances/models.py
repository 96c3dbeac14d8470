from django.db import models
from django.db.models import Q

from ciaoweb.core.exceptions import register_constraint_message
from ciaoweb.core.models import BaseModel
from ciaoweb.core.validators import DNS_LABEL_PATTERN, validate_dns_label
from ciaoweb.instances.choices import (
    AttachmentState,
    InstanceKind,
    InstanceState,
    IpSource,
    Ipv6Source,
)

PRIMARY_IFNAME = "eth0"
# At most this many secondary interfaces per instance (eth1-eth8, beside the primary
# overlay eth0), at launch (`networks`) and by hot-plug. An 82576 (igb) PF gives 7 VFs,
# so 8 is more SR-IOV interfaces than one host's physnet holds.
MAX_NETWORKS = 8


class Instance(BaseModel):
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.PROTECT, related_name="instances")
    name = models.CharField(max_length=63, validators=[validate_dns_label])
    kind = models.CharField(max_length=16, choices=InstanceKind.CHOICES)
    host = models.ForeignKey(
        "inventory.Host",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="instances",
    )
    state = models.CharField(
        max_length=16, choices=InstanceState.CHOICES, default=InstanceState.PENDING
    )
    error = models.TextField(blank=True)
    netns = models.CharField(max_length=160, blank=True)
    # Bumped on every desired-state change; agent results carrying an older one are stale.
    generation = models.PositiveIntegerField(default=1)

    class Meta(BaseModel.Meta):
        ordering = ["created"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], name="instances_instance_unique_tenant_name"
            ),
            models.CheckConstraint(
                condition=Q(name__regex=rf"^{DNS_LABEL_PATTERN}$"),
                name="instances_instance_name_dns_label",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s for s, _ in InstanceState.CHOICES]),
                name="instances_instance_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=[k for k, _ in InstanceKind.CHOICES]),
                name="instances_instance_kind_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["host", "state"], name="instances_instance_host_state"),
            # A name's reservations on a network (hostnames are instance names): a launch's
            # DHCP refresh and the shared-network name check look it up across tenants.
            models.Index(fields=["name"], name="instances_instance_name"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant.name}/{self.name}"


class Attachment(BaseModel):
    """An instance's interface on a network (eth0 = primary overlay, eth1.. secondaries)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="attachments")
    network = models.ForeignKey(
        "networks.Network", on_delete=models.PROTECT, related_name="attachments"
    )
    ifname = models.CharField(max_length=15)
    mac = models.CharField(max_length=17, unique=True)
    ip = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    ip_source = models.CharField(max_length=16, choices=IpSource.CHOICES, default=IpSource.UNKNOWN)
    # Dual-stack networks only (blank source on IPv4-only ones).
    ipv6 = models.GenericIPAddressField(protocol="IPv6", null=True, blank=True)
    ipv6_source = models.CharField(max_length=16, choices=Ipv6Source.CHOICES, blank=True)
    state = models.CharField(
        max_length=16, choices=AttachmentState.CHOICES, default=AttachmentState.PENDING
    )
    # A VF is attached at most once: the one-to-one is the database's guarantee.
    vf = models.OneToOneField(
        "inventory.VirtualFunction",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="attachment",
    )

    class Meta(BaseModel.Meta):
        ordering = ["instance", "ifname"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "ifname"], name="instances_attachment_unique_ifname"
            ),
            models.UniqueConstraint(
                fields=["instance", "network"], name="instances_attachment_unique_network"
            ),
            models.UniqueConstraint(
                fields=["network", "ip"], name="instances_attachment_unique_network_ip"
            ),
            models.UniqueConstraint(
                fields=["network", "ipv6"], name="instances_attachment_unique_network_ipv6"
            ),
            models.CheckConstraint(
                condition=Q(ip_source__in=[s for s, _ in IpSource.CHOICES]),
                name="instances_attachment_ip_source_valid",
            ),
            models.CheckConstraint(
                condition=Q(ipv6_source="") | Q(ipv6_source__in=[s for s, _ in Ipv6Source.CHOICES]),
                name="instances_attachment_ipv6_source_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instance}:{self.ifname}"


register_constraint_message(
    "instances_instance_unique_tenant_name", "an instance with this name already exists"
)
register_constraint_message("instances_attachment_mac_key", "this MAC address is already in use")
register_constraint_message(
    "instances_attachment_unique_network_ip", "this IP address is already taken on the network"
)
register_constraint_message(
    "instances_attachment_unique_network_ipv6",
    "this IPv6 address is already taken on the network",
)
register_constraint_message("instances_attachment_vf_id_key", "this VF is already attached")
