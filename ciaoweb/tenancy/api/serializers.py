from rest_framework import serializers

from ciaoweb.core.validators import validate_dns_label, validate_username
from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.models import Membership, Tenant


class TenantSerializer(serializers.ModelSerializer):
    name = serializers.CharField(max_length=63, validators=[validate_dns_label])

    class Meta:
        model = Tenant
        fields = ["id", "name", "created", "updated"]
        read_only_fields = ["created", "updated"]

    def validate_name(self, value: str) -> str:
        clash = Tenant.objects.filter(name=value).exclude(pk=getattr(self.instance, "pk", None))
        if clash.exists():
            raise serializers.ValidationError(f"a tenant named {value} already exists")
        return value


class MemberSerializer(serializers.Serializer):
    """`POST tenants/{id}/members/ {username, password, role}`."""

    username = serializers.CharField(max_length=150, validators=[validate_username])
    password = serializers.CharField(write_only=True, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=MembershipRole.CHOICES, default=MembershipRole.MEMBER)


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "tenant", "role"]
