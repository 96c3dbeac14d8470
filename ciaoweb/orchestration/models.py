"""State the orchestration layer keeps besides the domain models."""

from django.db import models

from ciaoweb.core.models import BaseModel

from .choices import DhcpServerState


class DhcpServer(BaseModel):
    """A managed network's dnsmasq on a network node, reached through one of its VFs.

    `network_key` outlives the network row so a deleted network's server can still be
    found, stopped and its VF reset.
    """

    network_key = models.UUIDField(unique=True)
    network = models.OneToOneField(
        "networks.Network",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dhcp_server",
    )
    host = models.ForeignKey(
        "inventory.Host", on_delete=models.PROTECT, related_name="dhcp_servers"
    )
    # The VF on the network's VLAN; None for an overlay network's server (a veth there).
    vf = models.OneToOneField(
        "inventory.VirtualFunction",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dhcp_server",
    )
    mac = models.CharField(max_length=17, unique=True)
    state = models.CharField(
        max_length=16, choices=DhcpServerState.CHOICES, default=DhcpServerState.PENDING
    )
    netns = models.CharField(max_length=160, blank=True)
    error = models.TextField(blank=True)
    # Bumped each time a spec is built (`dhcp.current_spec`): the agent applies a spec's
    # reservations only when no newer one has been applied, since specs can arrive out
    # of order (two worker processes, a reconcile computed before a launch committed).
    revision = models.PositiveBigIntegerField(default=0)

    class Meta(BaseModel.Meta):
        verbose_name = "DHCP server"

    def __str__(self) -> str:
        return f"dhcp {self.network_key} on {self.host.name}"


class OverlaySegment(BaseModel):
    """The VXLAN segment (VNI) that carries a tenant's primary overlay network."""

    VNI_MIN, VNI_MAX = 1, 2**24 - 1

    network = models.OneToOneField(
        "networks.Network", on_delete=models.CASCADE, related_name="overlay_segment"
    )
    vni = models.PositiveIntegerField(unique=True)

    class Meta(BaseModel.Meta):
        constraints = [
            models.CheckConstraint(
                condition=models.Q(vni__gte=1, vni__lte=2**24 - 1),
                name="orchestration_overlaysegment_vni_range",
            )
        ]

    def __str__(self) -> str:
        return f"vni {self.vni} for {self.network}"
