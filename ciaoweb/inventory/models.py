from django.db import models
from django.db.models import Q

from ciaoweb.core.exceptions import register_constraint_message
from ciaoweb.core.models import BaseModel
from ciaoweb.core.validators import DNS_LABEL_PATTERN, validate_dns_label
from ciaoweb.inventory.capabilities import LABELS, unsupported
from ciaoweb.inventory.choices import HostState, VfState


class Host(BaseModel):
    name = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    state = models.CharField(max_length=16, choices=HostState.CHOICES, default=HostState.ONLINE)
    last_seen = models.DateTimeField(null=True, blank=True)
    is_network_node = models.BooleanField(default=False)
    mgmt_address = models.GenericIPAddressField(null=True, blank=True)
    # Instances on this host: the scheduler's ordering key. Written only by
    # ciaoweb.inventory.load, never by save() (see below).
    load = models.PositiveIntegerField(default=0, editable=False)
    # The enrolment secret (ciaoweb.core.credentials): the agent's broker password and
    # signing key derive from it. Never serialised; shown once, when issued.
    secret = models.CharField(max_length=64, blank=True, editable=False)
    # The ciaoweb version its agent reported with its last inventory ("" until it did).
    agent_version = models.CharField(max_length=64, blank=True, editable=False)
    # What that agent understands (ciaoweb.taskrouting.AGENT_FEATURES); [] for an older one.
    features = models.JSONField(default=list, blank=True, editable=False)

    class Meta(BaseModel.Meta):
        ordering = ["name"]
        indexes = [
            # The scheduler's scan: online hosts, compute before network nodes, least
            # loaded first, by name; it stops at the first host with the free VFs.
            models.Index(
                fields=["state", "is_network_node", "load", "name"],
                name="inventory_host_placement",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(name__regex=rf"^{DNS_LABEL_PATTERN}$"),
                name="inventory_host_name_dns_label",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s for s, _ in HostState.CHOICES]),
                name="inventory_host_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # A full save of a Host read a while ago (API, admin, inventory sync) must not
        # put a stale `load` back: the column only moves by ciaoweb.inventory.load's
        # atomic updates; nor a stale `secret` (only enrol_host writes it). Inserts still
        # write their defaults.
        full = not args and kwargs.get("update_fields") is None and not kwargs.get("force_insert")
        if full and not self._state.adding:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in ("load", "secret")
            ]
        super().save(*args, **kwargs)


class PhysicalFunction(BaseModel):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pfs")
    name = models.CharField(max_length=15)  # a Linux netdev name (IFNAMSIZ - 1)
    pci_address = models.CharField(max_length=32, blank=True)
    physnet = models.CharField(max_length=64)
    total_vfs = models.PositiveIntegerField(default=0)
    num_vfs = models.PositiveIntegerField(default=0)
    # Optional knobs of the PF's driver, as its agent probed them: knob -> bool
    # (ciaoweb.inventory.capabilities; False: cannot, missing: not known yet).
    capabilities = models.JSONField(default=dict, blank=True)

    class Meta(BaseModel.Meta):
        ordering = ["host__name", "name"]
        verbose_name = "physical function"
        constraints = [
            models.UniqueConstraint(fields=["host", "name"], name="inventory_pf_unique_host_name"),
            models.CheckConstraint(
                condition=Q(num_vfs__lte=models.F("total_vfs")),
                name="inventory_pf_num_vfs_le_total",
            ),
        ]
        indexes = [models.Index(fields=["physnet", "host"], name="inventory_pf_physnet_host")]

    def __str__(self) -> str:
        return f"{self.host.name}/{self.name}"

    @property
    def unsupported_capabilities(self) -> list[str]:
        """Readable names of the knobs this PF lacks (e.g. ["link_state", "802.1ad"])."""
        return [LABELS[knob] for knob in unsupported(self.capabilities)]


class VirtualFunction(BaseModel):
    """One VF of a PF. Its owner is `attachment` (reverse of Attachment.vf, unique)."""

    pf = models.ForeignKey(PhysicalFunction, on_delete=models.CASCADE, related_name="vfs")
    index = models.PositiveIntegerField()
    pci_address = models.CharField(max_length=32, blank=True)
    netdev = models.CharField(max_length=15, blank=True)
    state = models.CharField(max_length=16, choices=VfState.CHOICES, default=VfState.FREE)
    mac = models.CharField(max_length=17, blank=True)  # configured MAC (desired once claimed)
    vlan = models.PositiveIntegerField(null=True, blank=True)

    class Meta(BaseModel.Meta):
        ordering = ["pf__host__name", "pf__name", "index"]
        verbose_name = "virtual function"
        constraints = [
            models.UniqueConstraint(fields=["pf", "index"], name="inventory_vf_unique_pf_index"),
            models.CheckConstraint(
                condition=Q(state__in=[s for s, _ in VfState.CHOICES]),
                name="inventory_vf_state_valid",
            ),
        ]
        indexes = [
            # The claim query: the lowest free VF of one PF.
            models.Index(
                fields=["pf", "index"],
                condition=Q(state=VfState.FREE),
                name="inventory_vf_free_by_pf",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pf}/vf{self.index}"


register_constraint_message(
    "inventory_pf_unique_host_name", "this host already has a PF of that name"
)
register_constraint_message(
    "inventory_vf_unique_pf_index", "this PF already has a VF of that index"
)
