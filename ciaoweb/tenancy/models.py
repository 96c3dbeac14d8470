from django.conf import settings
from django.db import models

from ciaoweb.core.exceptions import register_constraint_message
from ciaoweb.core.models import BaseModel
from ciaoweb.core.validators import DNS_LABEL_PATTERN, validate_dns_label
from ciaoweb.tenancy.choices import MembershipRole


class Tenant(BaseModel):
    name = models.CharField(max_length=63, unique=True, validators=[validate_dns_label])
    # Quotas (ciaoweb.tenancy.quotas): null = the setting's default (CIAO_QUOTA_<NAME>).
    quota_networks = models.PositiveIntegerField(null=True, blank=True)
    quota_instances = models.PositiveIntegerField(null=True, blank=True)
    quota_vfs = models.PositiveIntegerField(null=True, blank=True)

    class Meta(BaseModel.Meta):
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(name__regex=rf"^{DNS_LABEL_PATTERN}$"),
                name="tenancy_tenant_name_dns_label",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(BaseModel):
    """A user's place in a tenant. A user belongs to at most one tenant (kept simple)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(
        max_length=16, choices=MembershipRole.CHOICES, default=MembershipRole.MEMBER
    )

    class Meta(BaseModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["user"], name="tenancy_membership_one_tenant_per_user"),
            models.CheckConstraint(
                condition=models.Q(role__in=[MembershipRole.MEMBER, MembershipRole.ADMIN]),
                name="tenancy_membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


register_constraint_message(
    "tenancy_membership_one_tenant_per_user", "the user already belongs to a tenant"
)
register_constraint_message("tenancy_tenant_name_key", "a tenant with this name already exists")
