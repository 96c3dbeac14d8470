"""Inventory as agents report it, host liveness and host maintenance."""

import logging
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ciaoweb.core import liveness
from ciaoweb.core.credentials import new_secret
from ciaoweb.events.choices import EventKind
from ciaoweb.events.services import record, record_security
from ciaoweb.inventory.capabilities import clean_capabilities
from ciaoweb.inventory.choices import HostState, VfState
from ciaoweb.inventory.models import Host, PhysicalFunction, VirtualFunction
from ciaoweb.operations.choices import OperationKind, OperationState
from ciaoweb.operations.models import Operation
from ciaoweb.operations.queue import advance_on_commit
from ciaoweb.operations.services import open_operation, record_finished
from ciaoweb.taskrouting import AGENT_FEATURES

log = logging.getLogger(__name__)


def _update_if_changed(vf: VirtualFunction, values: dict[str, Any], rows) -> None:
    if any(getattr(vf, field) != value for field, value in values.items()):
        rows.update(**values, updated=timezone.now())


def _sync_vfs(pf: PhysicalFunction, reported: list[dict[str, Any]]) -> None:
    """Upsert reported VFs; drop unreported free ones, flag unreported owned ones.

    The PF's VFs are read in one query (a periodic registration changes nothing, and a
    query per VF made it the controller's largest task in a burst)."""
    existing = {vf.index: vf for vf in pf.vfs.all()}
    seen, new = set(), []
    for item in reported:
        index = int(item["index"])
        if index in seen:
            continue  # reported twice: the first word stands
        seen.add(index)
        vf = existing.get(index)
        if vf is None:
            new.append(
                VirtualFunction(
                    pf=pf,
                    index=index,
                    pci_address=item.get("pci_address", ""),
                    netdev=item.get("netdev", ""),
                    mac=item.get("mac") or "",
                    vlan=item.get("vlan") or None,
                )
            )
            continue
        # Unchanged rows stay unlocked: the scheduler claims VFs with SKIP LOCKED, so a
        # periodic re-registration must not hide free VFs ("no free VF left").
        row = pf.vfs.filter(pk=vf.pk)
        hardware = {
            "pci_address": item.get("pci_address", vf.pci_address),
            "netdev": item.get("netdev", vf.netdev),
        }
        _update_if_changed(vf, hardware, row)
        # A claimed VF keeps its desired MAC/VLAN, also when claimed since the read.
        if vf.state == VfState.FREE:
            configured = {"mac": item.get("mac") or "", "vlan": item.get("vlan") or None}
            _update_if_changed(vf, configured, row.filter(state=VfState.FREE))
    # A concurrent registration of the same host may have created some meanwhile.
    VirtualFunction.objects.bulk_create(new, ignore_conflicts=True)
    gone = pf.vfs.exclude(index__in=seen)
    gone.filter(state=VfState.FREE).delete()
    gone.update(state=VfState.ERROR)  # still owned: keep the row so nothing is reused


AGENT_VERSION_MAX = Host._meta.get_field("agent_version").max_length


def clean_agent_version(reported: Any) -> str:
    """What an agent says its version is, as shown to admins: printable text, at most
    the column's length; anything else (a number, a list) is no version at all."""
    if not isinstance(reported, str):
        return ""
    return "".join(c for c in reported if c.isprintable()).strip()[:AGENT_VERSION_MAX]


def clean_features(reported: Any) -> list[str]:
    """The features an agent lists that this controller knows; none from an older agent
    (or anything that is not a list of them)."""
    if not isinstance(reported, list):
        return []
    return [name for name in AGENT_FEATURES if name in reported]


@transaction.atomic
def register_inventory(host_name: str, inventory: dict[str, Any]) -> Host:
    """Upsert the Host, its PFs and VFs from an agent's report; idempotent.

    `inventory = {"host": name, "is_network_node": bool, "agent_version": str, "pfs":
    [{"name", "pci_address", "physnet", "total_vfs", "num_vfs", "capabilities": {knob:
    bool}, "vfs": [{"index", "pci_address", "netdev", "mac", "vlan"}]}]}`. A host in
    maintenance stays in maintenance. An agent that reports no version (an older one)
    leaves the host's empty: a version is only ever what the running agent said.

    `capabilities` (ciaoweb.inventory.capabilities) is cleaned, not trusted: unknown knobs
    are left out (logged: a newer agent), non-boolean values are left out and a value that
    is not an object counts as `{}` (both recorded as a security event); a PF reported
    without the key (an older agent) keeps what it had.
    """
    # NO KEY UPDATE: creating an instance on this host takes KEY SHARE on the row (the
    # foreign key) while holding VF locks; a plain FOR UPDATE here deadlocked with it.
    # Whether a host is a network node is the admin's word (its enrolment), never the
    # agent's: a report can only say so for a host it creates (in-process tests).
    host, created = Host.objects.select_for_update(no_key=True).get_or_create(
        name=host_name, defaults={"is_network_node": bool(inventory.get("is_network_node"))}
    )
    host.last_seen = timezone.now()
    if host.state == HostState.OFFLINE:
        host.state = HostState.ONLINE
    if "mgmt_address" in inventory:
        host.mgmt_address = inventory["mgmt_address"] or None
    host.agent_version = clean_agent_version(inventory.get("agent_version"))
    host.features = clean_features(inventory.get("features"))
    host.save()

    reported_pfs = set()
    for item in inventory.get("pfs", []):
        reported_pfs.add(item["name"])
        defaults = {
            "pci_address": item.get("pci_address", ""),
            "physnet": item["physnet"],
            "total_vfs": int(item.get("total_vfs", 0)),
            "num_vfs": int(item.get("num_vfs", 0)),
        }
        if "capabilities" in item:
            defaults["capabilities"], ignored, problems = clean_capabilities(item["capabilities"])
            if ignored:
                log.info(
                    "host %s PF %s: unknown capabilities ignored: %s",
                    host_name,
                    item["name"],
                    ", ".join(ignored[:10]),
                )
            if problems:
                record_security(
                    f"host {host_name} PF {str(item['name'])[:15]}: "
                    f"capabilities partly refused: {'; '.join(problems[:5])}",
                    sender=host_name,
                    pf=str(item["name"])[:15],
                )
        pf, _ = PhysicalFunction.objects.update_or_create(
            host=host, name=item["name"], defaults=defaults
        )
        _sync_vfs(pf, item.get("vfs", []))
    for pf in host.pfs.exclude(name__in=reported_pfs):
        _sync_vfs(pf, [])
        if not pf.vfs.exists():
            pf.delete()

    kind = EventKind.HOST_CREATED if created else EventKind.HOST_UPDATED
    record(kind, host, f"host {host} registered its inventory", data={"pfs": len(reported_pfs)})
    return host


@transaction.atomic
def heartbeat(host_name: str) -> bool:
    """Note that the host's agent is alive; an offline host comes back online. False for
    a host we do not know."""
    now = timezone.now()
    # The common case, every few seconds per host: one UPDATE, no row lock taken first.
    if (
        Host.objects.filter(name=host_name)
        .exclude(state=HostState.OFFLINE)
        .update(last_seen=now, updated=now)
    ):
        return True
    host = Host.objects.select_for_update(no_key=True).filter(name=host_name).first()
    if host is None:
        return False
    if host.last_seen is None:  # enrolled, never registered: its inventory brings it online
        return True
    host.last_seen = now
    if host.state != HostState.OFFLINE:  # changed since the UPDATE: only note the beat
        host.save(update_fields=["last_seen", "updated"])
        return True
    host.state = HostState.ONLINE
    host.save(update_fields=["last_seen", "state", "updated"])
    record(EventKind.HOST_UPDATED, host, f"host {host} is back online")
    return True


def note_liveness(ages: dict[str, float]) -> dict[str, list[str]]:
    """The hosts' beats as the broker's Redis holds them (`ciaoweb.core.liveness`:
    seconds since each host's last beat, for hosts whose key is there).

    `last_seen` follows the beats. A host silent for longer than CIAO_HEARTBEAT_TIMEOUT
    goes offline, its instances flagged; an offline one that beats again comes back.
    When no host has a key at all while some are online, the Redis restarted empty (it
    keeps nothing on disk) and nobody is judged until the agents beat again: their next
    beat is one interval away, and a silent host would have been seen going silent.
    An enrolled host that never registered (no `last_seen` yet) is left as enrolment made
    it, offline, however it beats: its agent's inventory brings it online, so a host is
    never online with VFs the controller does not know yet (a launch in that gap found
    "no capacity" on a cluster whose hosts all showed online).
    Returns the names that went offline and came back online."""
    now = timezone.now()
    timeout = settings.CIAO_HEARTBEAT_TIMEOUT
    rows = list(Host.objects.values_list("pk", "name", "state", "last_seen"))
    seen = {name: now - timedelta(seconds=age) for name, age in ages.items()}
    # Written when it moved by a second or more: about one row per host per second.
    step = timedelta(seconds=1)
    _write_last_seen(
        {
            pk: seen[name]
            for pk, name, _, last_seen in rows
            if name in seen and last_seen is not None and seen[name] - last_seen >= step
        }
    )
    judged = bool(ages) or not any(state == HostState.ONLINE for _, _, state, _ in rows)
    changed: dict[str, list[str]] = {"offline": [], "online": []}
    for pk, name, state, last_seen in rows:
        last = max(filter(None, (seen.get(name), last_seen)), default=None)  # or registered
        silent = (now - last).total_seconds() if last else math.inf
        if state == HostState.ONLINE and silent > timeout and judged:
            if _set_state(pk, HostState.ONLINE, HostState.OFFLINE, silent):
                changed["offline"].append(name)
        elif state == HostState.OFFLINE and name in seen and silent <= timeout and last_seen:
            if _set_state(pk, HostState.OFFLINE, HostState.ONLINE, silent):
                changed["online"].append(name)
    return changed


def check_liveness(client) -> dict[str, list[str]]:
    """Every host's last beat read from the broker's Redis (`client`), then applied."""
    hosts = list(Host.objects.values_list("name", flat=True))
    return note_liveness(liveness.beat_ages(client, hosts))


def _write_last_seen(seen: dict) -> None:
    """Many hosts' `last_seen` at once. On PostgreSQL one UPDATE ... FROM (VALUES ...):
    Django's bulk_update builds a CASE over every row, which cost 1 ms per host (a whole
    second of each second at 1,000 hosts)."""
    if not seen:
        return
    if connection.vendor != "postgresql":
        rows = [Host(pk=pk, last_seen=when) for pk, when in seen.items()]
        Host.objects.bulk_update(rows, ["last_seen"], batch_size=500)
        return
    table = connection.ops.quote_name(Host._meta.db_table)
    values = ", ".join(["(%s::uuid, %s::timestamptz)"] * len(seen))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS h SET last_seen = v.seen FROM (VALUES {values}) AS v(id, seen) "
            "WHERE h.id = v.id",
            [item for pair in seen.items() for item in pair],
        )


@transaction.atomic
def _set_state(host_pk, was: str, becomes: str, silent: float) -> bool:
    """One host's liveness change, if it still is in `was` (an admin's maintenance or a
    re-registration in between wins); its instances are flagged by an event each."""
    host = Host.objects.select_for_update(no_key=True).filter(pk=host_pk, state=was).first()
    if host is None:
        return False
    host.state = becomes
    host.save(update_fields=["state", "updated"])
    if becomes == HostState.OFFLINE:
        message = f"host {host} silent for {silent:.1f} s: offline"
        flag = f"host {host.name} is offline: instance unreachable until it is back"
    else:
        message = f"host {host} is back online"
        flag = f"host {host.name} is back online"
    record(EventKind.HOST_UPDATED, host, message)
    for instance in host.instances.all():
        record(EventKind.INSTANCE_UPDATED, instance, flag, data={"host_state": becomes})
    return True


@transaction.atomic
def enrol_host(name: str, is_network_node: bool | None = None) -> tuple[Host, str]:
    """Create the host (offline until its agent registers) or re-issue an existing one's
    credential (the old one stops working). Returns the host and its new secret, which
    is shown once and never again."""
    host, created = Host.objects.select_for_update(no_key=True).get_or_create(
        name=name,
        defaults={"state": HostState.OFFLINE, "is_network_node": bool(is_network_node)},
    )
    secret = new_secret()
    changes: dict = {"secret": secret, "updated": timezone.now()}
    if is_network_node is not None and not created:
        changes["is_network_node"] = is_network_node
    Host.objects.filter(pk=host.pk).update(**changes)
    host.refresh_from_db()
    verb = "enrolled" if created else "issued a new credential"
    record(
        EventKind.HOST_CREATED if created else EventKind.HOST_UPDATED, host, f"host {host} {verb}"
    )
    return host, secret


def _active_evacuations(host: Host):
    return Operation.objects.filter(
        kind=OperationKind.EVACUATE, host=host, state__in=OperationState.ACTIVE
    )


@transaction.atomic
def evacuate_host(host: Host) -> Host:
    """Maintenance: the scheduler skips the host, and an evacuation operation migrates
    its instances (one child migration each), carried on by the controller's worker."""
    host = Host.objects.select_for_update().get(pk=host.pk)
    host.state = HostState.MAINTENANCE
    host.save(update_fields=["state", "updated"])
    record(EventKind.HOST_EVACUATING, host, f"host {host} is being evacuated")
    if not _active_evacuations(host).exists():
        open_operation(OperationKind.EVACUATE, host=host)
    return host


@transaction.atomic
def restore_host(host: Host) -> Host:
    """Back in service; a running evacuation stops starting migrations and ends."""
    host = Host.objects.select_for_update().get(pk=host.pk)
    host.state = HostState.ONLINE
    host.save(update_fields=["state", "updated"])
    record(EventKind.HOST_RESTORED, host, f"host {host} is back in service")
    record_finished(OperationKind.RESTORE, host=host)
    for operation_id in _active_evacuations(host).values_list("pk", flat=True):
        advance_on_commit(operation_id)
    return host
