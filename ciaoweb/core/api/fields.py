"""Serializer fields shared by several apps."""

from rest_framework import serializers

from ciaoweb.core.validators import normalize_mac, validate_mac


class MacAddressField(serializers.CharField):
    """A unicast, non-zero MAC, returned lowercase and colon-separated."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 17)
        super().__init__(**kwargs)
        self.validators.append(validate_mac)

    def to_internal_value(self, data):
        return normalize_mac(super().to_internal_value(data))
