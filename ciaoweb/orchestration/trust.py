"""Whom the controller's worker believes, and about what (Kubernetes' NodeRestriction).

Every message arrives signed (ciaoweb.core.signing); the proved sender reaches the task
as `sender`. An agent may report only on its own host, and only what is bound to it:
the operations waiting for it, the DHCP servers placed on it, leases of those servers
for MACs of that network, VFs of its PFs. Only the web process and the controller itself
may ask for controller work (advance an operation, a network changed). Anything else is
refused, changes nothing, and is recorded as a security event (admins see it in events
and on the dashboard).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ciaoweb.core import signing
from ciaoweb.core.credentials import signing_key
from ciaoweb.events.services import record_security
from ciaoweb.inventory.models import Host

INTERNAL = (signing.WEB, signing.CONTROLLER)


def control_key() -> bytes:
    if not settings.CIAO_CONTROL_KEY:
        raise signing.SignatureError("CIAO_CONTROL_KEY is not set: nothing can be signed")
    return settings.CIAO_CONTROL_KEY.encode()


def host_key(name: str) -> bytes | None:
    secret = Host.objects.filter(name=name).exclude(secret="").values_list("secret", flat=True)
    found = secret.first()
    return signing_key(found) if found else None


def refuse(sender: str, what: str, **data: Any) -> None:
    record_security(f"refused {what} from {sender or 'an unsigned sender'}", sender=sender, **data)


def from_node(sender: str, node: str, task: str) -> bool:
    """A report about `node` is believed only from `node` itself, an enrolled host."""
    if sender and sender == node and sender not in INTERNAL:
        return True
    refuse(sender, f"{task} about host {node!r}", task=task, node=node)
    return False


def internal(sender: str, task: str) -> bool:
    """Controller work is asked for only by the web process or the controller itself."""
    if sender in INTERNAL:
        return True
    refuse(sender, f"{task}: only the controller may ask for it", task=task)
    return False


def controller_signer(identity: str) -> signing.Signer:
    """The web process ("web") and the controller worker ("controller"): node tasks are
    signed with that node's key (only the controller may send them), the rest with the
    control key; senders are the controller, the web process, or an enrolled host."""

    def outgoing(body: dict) -> bytes:
        task = str(body.get("task", ""))
        if not task.startswith("agent."):
            return control_key()
        node = str((body.get("kwargs") or {}).get("node", ""))
        key = host_key(node) if identity == signing.CONTROLLER else None
        if key is None:
            raise signing.SignatureError(f"{identity} cannot sign {task} for host {node!r}")
        return key

    def key_of(sender: str) -> bytes | None:
        return control_key() if sender in INTERNAL else host_key(sender)

    def refused(exc: signing.SignatureError) -> None:
        refuse(exc.sender, f"a message ({exc.task or 'unreadable'}): {exc}", task=exc.task)

    return signing.Signer(identity, outgoing, key_of, inject_sender=True, on_refused=refused)
