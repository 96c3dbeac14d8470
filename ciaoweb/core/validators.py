"""Validators for values that end up as hostnames, namespace names and L2 addresses."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

DNS_LABEL_PATTERN = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
# `\Z`, not `$`: `$` also matches before a trailing newline ("web\n" would pass).
DNS_LABEL_RE = re.compile(rf"^{DNS_LABEL_PATTERN}\Z")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
# Usernames are shown in the dashboard and logs: ASCII letters, digits and `_.@+-` only,
# starting with a letter or digit (no spaces, quotes, slashes or unicode look-alikes).
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,149}\Z")

validate_dns_label = RegexValidator(
    DNS_LABEL_RE,
    message=(
        "must be a DNS label: lowercase letters, digits and '-', 1-63 characters, "
        "starting and ending with a letter or digit"
    ),
    code="dns_label",
)


def validate_dns_domain(value: str) -> None:
    """A dotted DNS name whose every label is a DNS label (e.g. `tenant.example`)."""
    if len(value) > 253 or not all(DNS_LABEL_RE.match(label) for label in value.split(".")):
        raise ValidationError("must be a DNS domain: dot-separated DNS labels", code="dns_domain")


def normalize_mac(value: str) -> str:
    """Lowercase, colon-separated; accepts '-' separators too."""
    return value.strip().lower().replace("-", ":")


def validate_mac(value: str) -> None:
    """A MAC an instance may use: well formed, unicast, not all-zero."""
    mac = normalize_mac(value)
    if not MAC_RE.match(mac):
        raise ValidationError("must be a MAC address like 02:00:00:00:00:01", code="mac_format")
    if mac == "00:00:00:00:00:00":
        raise ValidationError("must not be the all-zero MAC address", code="mac_zero")
    if int(mac[:2], 16) & 0x01:
        raise ValidationError(
            "must be a unicast MAC address (multicast bit of the first octet set)",
            code="mac_multicast",
        )


def validate_username(value: str) -> None:
    if not USERNAME_RE.match(value) or ".." in value:
        raise ValidationError(
            "must be 1-150 ASCII letters, digits and _ . @ + -, starting with a letter or digit",
            code="username",
        )
