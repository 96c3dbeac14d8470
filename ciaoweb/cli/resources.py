"""What `ciao` knows about each resource, as data: its collection, its table columns,
its list filters, and how a name turns into the object (`resolve`).

Names resolve through the list endpoint (`?name=` where the API filters by name) and
are matched here as well, so a server that ignores the filter still gives the right
answer; a name matching several objects (an admin sees every tenant's `default`) is a
usage error that lists their ids."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ciaoweb.cli.errors import ApiError, CliError, ExitCode
from ciaoweb.cli.output import Column, Names
from ciaoweb.instances.choices import InstanceKind, InstanceState
from ciaoweb.inventory.choices import HostState
from ciaoweb.networks.choices import Ipam, LeaseState, NetworkKind
from ciaoweb.operations.choices import OperationKind, OperationState

if TYPE_CHECKING:
    from ciaoweb.cli.client import ApiClient


def values(choices: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(value for value, _ in choices)


@dataclass(frozen=True)
class Filter:
    """A list option: `--<option> VALUE` sent as `?<param>=`. With `ref`, VALUE may be
    that resource's name (resolved to its id); `flag` makes `--x/--no-x`."""

    option: str
    help: str
    param: str = ""
    ref: str | None = None
    choices: tuple[str, ...] | None = None
    flag: bool = False

    @property
    def query_param(self) -> str:
        return self.param or self.option.replace("-", "_")

    @property
    def dest(self) -> str:
        return "filter_" + self.option.replace("-", "_")


@dataclass(frozen=True)
class Resource:
    name: str  # the command group: `ciao network ...`
    about: str  # its help line
    path: str  # the collection under /api/v1/
    columns: tuple[Column, ...]
    name_field: str | None = "name"  # None: known by id only
    name_filter: bool = False  # the API filters the collection by `?name=`
    tenant_scoped: bool = False  # names are unique per tenant: `--tenant` picks one
    filters: tuple[Filter, ...] = ()
    default_limit: int | None = None  # at most this many rows unless `--limit` says
    subtables: dict[str, tuple[Column, ...]] = field(default_factory=dict)

    @property
    def plural(self) -> str:
        return self.path.replace("-", " ")

    def label(self, obj: dict) -> str:
        return str(obj.get(self.name_field) or obj["id"]) if self.name_field else str(obj["id"])


def ref(path: str, key: str) -> Callable[[dict, Names], Any]:
    """A column showing another resource's name for the id in `key`."""
    return lambda obj, names: names.name(path, obj.get(key))


def _ips(instance: dict, names: Names) -> str:
    shown = [
        f"{a['ifname']}={a[key]}"
        for a in instance.get("attachments", [])
        for key in ("ip", "ipv6")
        if a.get(key)
    ]
    return " ".join(shown)


def _ipv6_prefix(network: dict, names: Names) -> str | None:
    """`prefix (mode)` of a dual-stack network; empty for IPv4-only ones."""
    if not network.get("ipv6_cidr"):
        return None
    return f"{network['ipv6_cidr']} ({network.get('ipv6_mode')})"


def _operation(instance: dict, names: Names) -> str | None:
    op = instance.get("operation")
    return f"{op['kind']}:{op['state']}" if op else None


def _op_host(op: dict, names: Names) -> str | None:
    """A migration's `source->target`, else the host it concerns."""
    source, target = op.get("source_host_name"), op.get("target_host_name")
    if source and target:
        return f"{source}->{target}"
    return op.get("host_name") or target or source


def quota_rows(quota: dict) -> list[dict]:
    """A quota answer as rows: each limit beside its use."""
    used = quota.get("used") or {}
    return [{"resource": k, "limit": quota.get(k), "used": used.get(k)} for k in used]


TENANT_FILTER = Filter("tenant", "a tenant's name or id (admins)", ref="tenants")

NETWORK = Resource(
    "network",
    "SR-IOV and overlay networks.",
    "networks",
    (
        Column("NAME", "name"),
        Column("TENANT", ref("tenants", "tenant")),
        Column("KIND", "kind"),
        Column("PHYSNET", "physnet"),
        Column("VLAN", "vlan"),
        Column("CIDR", "cidr"),
        Column("IPV6", _ipv6_prefix),
        Column("IPAM", "ipam"),
        Column("SHARED", "shared"),
        Column("ID", "id"),
    ),
    name_filter=True,
    tenant_scoped=True,
    filters=(
        Filter("kind", "overlay or sriov", choices=values(NetworkKind.CHOICES)),
        Filter("ipam", "how addresses are managed", choices=values(Ipam.CHOICES)),
        Filter("physnet", "a physical network's name"),
        TENANT_FILTER,
        Filter("shared", "only shared (or only not shared) networks", flag=True),
    ),
)

ATTACHMENT_COLUMNS = (
    Column("IFNAME", "ifname"),
    Column("NETWORK", ref("networks", "network")),
    Column("MAC", "mac"),
    Column("IP", "ip"),
    Column("SOURCE", "ip_source"),
    Column("IPV6", "ipv6"),
    Column("SOURCE6", "ipv6_source"),
    Column("STATE", "state"),
    Column("VF", "vf"),
)

INSTANCE = Resource(
    "instance",
    "Containers and VMs with their network attachments.",
    "instances",
    (
        Column("NAME", "name"),
        Column("STATE", "state"),
        Column("KIND", "kind"),
        Column("HOST", "host_name"),
        Column("IPS", _ips),
        Column("OPERATION", _operation),
        Column("ID", "id"),
    ),
    name_filter=True,
    tenant_scoped=True,
    filters=(
        Filter("state", "the instances in this state", choices=values(InstanceState.CHOICES)),
        Filter("kind", "container or vm", choices=values(InstanceKind.CHOICES)),
        Filter("host", "a host's name or id", ref="hosts"),
        TENANT_FILTER,
    ),
    subtables={"attachments": ATTACHMENT_COLUMNS},
)

HOST = Resource(
    "host",
    "Compute and network hosts (admins).",
    "hosts",
    (
        Column("NAME", "name"),
        Column("STATE", "state"),
        Column("NETWORK NODE", "is_network_node"),
        Column("LAST SEEN", "last_seen"),
        Column("ID", "id"),
    ),
    name_filter=True,
    filters=(Filter("state", "online, offline or maintenance", choices=values(HostState.CHOICES)),),
)

LEASE = Resource(
    "lease",
    "DHCP leases of the managed networks.",
    "leases",
    (
        Column("IP", "ip"),
        Column("MAC", "mac"),
        Column("HOSTNAME", "hostname"),
        Column("STATE", "state"),
        Column("NETWORK", ref("networks", "network")),
        Column("EXPIRES", "expires_at"),
        Column("ID", "id"),
    ),
    name_field=None,
    filters=(
        Filter("network", "a network's name or id", ref="networks"),
        Filter("mac", "a MAC address"),
        Filter("state", "active, expired or released", choices=values(LeaseState.CHOICES)),
    ),
)

EVENT = Resource(
    "event",
    "The audit log, newest first.",
    "events",
    (
        Column("CREATED", "created"),
        Column("KIND", "kind"),
        Column("MESSAGE", "message"),
        Column("ID", "id"),
    ),
    name_field=None,
    default_limit=100,
    filters=(
        Filter("kind", "e.g. instance.created"),
        Filter("object-type", "e.g. instance, network, host"),
        Filter("object-id", "the id of the object the events are about"),
        TENANT_FILTER,
        Filter("since", "ISO 8601 time, e.g. 2025-01-31T12:00:00Z"),
    ),
)

OPERATION = Resource(
    "operation",
    "Long-running changes and their progress, newest first.",
    "operations",
    (
        Column("CREATED", "created"),
        Column("KIND", "kind"),
        Column("STATE", "state"),
        Column("STEP", "step"),
        Column("INSTANCE", "instance_name"),
        Column("HOST", _op_host),
        Column("ERROR", "error"),
        Column("ID", "id"),
    ),
    name_field=None,
    default_limit=100,
    filters=(
        Filter("instance", "an instance's name or id", ref="instances"),
        Filter("host", "a host's name or id: on it, from it or to it"),
        Filter("kind", "what the operation does", choices=values(OperationKind.CHOICES)),
        Filter("state", "how far it got", choices=values(OperationState.CHOICES)),
        TENANT_FILTER,
    ),
)

TENANT = Resource(
    "tenant",
    "Tenants, their members and quotas.",
    "tenants",
    (Column("NAME", "name"), Column("CREATED", "created"), Column("ID", "id")),
)

MEMBER_COLUMNS = (Column("USERNAME", "username"), Column("ROLE", "role"), Column("ID", "id"))
QUOTA_COLUMNS = (Column("RESOURCE", "resource"), Column("LIMIT", "limit"), Column("USED", "used"))

RESOURCES: dict[str, Resource] = {
    r.name: r for r in (NETWORK, INSTANCE, HOST, LEASE, EVENT, OPERATION, TENANT)
}
BY_PATH: dict[str, Resource] = {r.path: r for r in RESOURCES.values()}


def is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def resolve(
    client: ApiClient,
    resource: Resource,
    value: str,
    *,
    params: dict[str, Any] | None = None,
    where: Callable[[dict], bool] | None = None,
    scope: str = "",
) -> dict:
    """The object named `value` (a name or an id). `params` narrow the listing (e.g. a
    tenant), `where` the candidates; `scope` says so in messages (" in tenant acme")."""
    if is_id(value):
        try:
            return client.get(f"{resource.path}/{value}/")
        except ApiError as exc:
            if exc.status == 404:
                raise CliError(f"{resource.name} {value} not found", ExitCode.NOT_FOUND) from None
            raise
    if resource.name_field is None:
        raise CliError(
            f"{resource.plural} are known by id only: {value!r} is not an id", ExitCode.USAGE
        )
    query = dict(params or {})
    if resource.name_filter:
        query[resource.name_field] = value
    found = [
        obj
        for obj in client.list(f"{resource.path}/", query)
        if obj.get(resource.name_field) == value and (where is None or where(obj))
    ]
    if not found:
        raise CliError(f"no {resource.name} named {value!r}{scope}", ExitCode.NOT_FOUND)
    if len(found) > 1:
        ids = ", ".join(obj["id"] for obj in found)
        narrow = " or --tenant" if resource.tenant_scoped and not scope else ""
        raise CliError(
            f"{len(found)} {resource.plural} are named {value!r}{scope}: use an id{narrow} ({ids})",
            ExitCode.USAGE,
        )
    return found[0]


def resolve_id(client: ApiClient, path: str, value: str) -> str:
    """An id as it is, a name through its resource."""
    return value if is_id(value) else resolve(client, BY_PATH[path], value)["id"]


class Refs:
    """Names of other resources for tables, one listing per collection (cached); a
    collection the user may not read shows ids instead."""

    def __init__(self, client_factory: Callable[[], ApiClient]) -> None:
        self._client_factory = client_factory
        self._names: dict[str, dict[str, str]] = {}

    def name(self, path: str, object_id: str | None) -> str | None:
        if not object_id:
            return None
        if path not in self._names:
            try:
                rows = self._client_factory().list(f"{path}/")
            except CliError:
                rows = []
            self._names[path] = {r["id"]: r.get("name") or r["id"] for r in rows}
        return self._names[path].get(object_id, object_id)
