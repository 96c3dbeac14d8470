"""MAC addresses for attachments: random, locally administered, unicast, unique."""

import secrets

from ciaoweb.core.exceptions import NoCapacity
from ciaoweb.instances.models import Attachment

MAC_ATTEMPTS = 16


def random_mac() -> str:
    """46 random bits; first octet has the locally-administered bit set, multicast clear."""
    octets = bytearray(secrets.token_bytes(6))
    octets[0] = (octets[0] & 0xFC) | 0x02
    return ":".join(f"{octet:02x}" for octet in octets)


def new_mac() -> str:
    """A MAC no attachment uses yet (the unique constraint settles concurrent draws)."""
    for _ in range(MAC_ATTEMPTS):
        mac = random_mac()
        if not Attachment.objects.filter(mac=mac).exists():
            return mac
    raise NoCapacity("could not draw an unused MAC address")
