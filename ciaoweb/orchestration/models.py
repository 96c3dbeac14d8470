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
        "networks.Network", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="dhcp_server",
    )
    host = models.ForeignKey("inventory.Host", on_delete=models.PROTECT, related_name="dhcp_servers")
    vf = models.OneToOneField(
        "inventory.VirtualFunction", on_delete=models.PROTECT, related_name="dhcp_server"
    )
    mac = models.CharField(max_length=17, unique=True)
    state = models.CharField(
        max_length=16, choices=DhcpServerState.CHOICES, default=DhcpServerState.PENDING
    )
    netns = models.CharField(max_length=160, blank=True)
    error = models.TextField(blank=True)

    class Meta(BaseModel.Meta):
        verbose_name = "DHCP server"

    def __str__(self) -> str:
        return f"dhcp {self.network_key} on {self.host.name}"
