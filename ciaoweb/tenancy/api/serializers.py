from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from ciaoweb.core.validators import validate_dns_label, validate_username
from ciaoweb.tenancy.choices import MembershipRole
from ciaoweb.tenancy.models import Membership, Tenant
from ciaoweb.tenancy.quotas import QUOTA_MAX


class TenantSerializer(serializers.ModelSerializer):
    name = serializers.CharField(
        max_length=63, validators=[validate_dns_label], help_text="a DNS label, unique"
    )

    class Meta:
        model = Tenant
        fields = ["id", "name", "created", "updated"]
        read_only_fields = ["created", "updated"]

    def validate_name(self, value: str) -> str:
        clash = Tenant.objects.filter(name=value).exclude(pk=getattr(self.instance, "pk", None))
        if clash.exists():
            raise serializers.ValidationError(f"a tenant named {value} already exists")
        return value


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A new member",
            value={"username": "alice", "password": "s3cret-alice", "role": "member"},
            request_only=True,
        )
    ]
)
class MemberSerializer(serializers.Serializer):
    """`POST tenants/{id}/members/ {username, password, role}`."""

    username = serializers.CharField(
        max_length=150,
        validators=[validate_username],
        help_text="ASCII letters, digits and `_.@+-`; an existing user is added",
    )
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="required for a new user (and checked by the password validators); an "
        "existing user's password is never changed",
    )
    role = serializers.ChoiceField(
        choices=MembershipRole.CHOICES,
        default=MembershipRole.MEMBER,
        help_text="a tenant `admin` may also add members to the tenant",
    )

    def validate(self, attrs):
        """A new user's password passes Django's AUTH_PASSWORD_VALIDATORS (an existing
        user's password is never changed here, so it is not checked)."""
        password, username = attrs.get("password"), attrs["username"]
        User = get_user_model()
        if password and not User.objects.filter(username=username).exists():
            try:
                validate_password(password, user=User(username=username))
            except DjangoValidationError as error:
                raise serializers.ValidationError({"password": list(error.messages)}) from None
        return attrs


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "tenant", "role"]
        extra_kwargs = {"role": {"help_text": "a tenant `admin` may also add members"}}


QUOTA_MESSAGE = f"must be an integer between 0 and {QUOTA_MAX}"


def _limit(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0,
        max_value=QUOTA_MAX,
        help_text=help_text,
        error_messages={
            "min_value": QUOTA_MESSAGE,
            "max_value": QUOTA_MESSAGE,
            "invalid": QUOTA_MESSAGE,
        },
    )


class QuotaUsageSerializer(serializers.Serializer):
    networks = serializers.IntegerField(read_only=True, help_text="networks besides `default`")
    instances = serializers.IntegerField(read_only=True, help_text="instances, in any state")
    vfs = serializers.IntegerField(read_only=True, help_text="VFs its instances hold")


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Limits",
            value={"networks": 20, "instances": 200, "vfs": 400},
            request_only=True,
        )
    ]
)
class QuotaSerializer(serializers.Serializer):
    """`GET/PUT tenants/{id}/quota/`: `{networks, instances, vfs, used: {...}}`. PUT needs
    every limit, PATCH some."""

    networks = _limit("networks of the tenant besides its primary overlay `default`")
    instances = _limit("instances of the tenant, in any state")
    vfs = _limit("VFs its instances hold: one per attachment on an SR-IOV network")
    used = QuotaUsageSerializer(read_only=True, help_text="what the tenant uses now")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            # IntegerField takes "5" and 5.0; a quota is a JSON integer, not a bool either.
            errors = {
                name: [QUOTA_MESSAGE]
                for name in ("networks", "instances", "vfs")
                if name in data and isinstance(data[name], bool | float)
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
