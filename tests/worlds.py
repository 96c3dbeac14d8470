"""The worlds tests build, in one place: tenants with members, hosts and networks, and
the instances tests create, wait for and delete.

Two kinds, called by each layer's own fixtures with that layer's parameters:

- `in_process_world`: rows made with the services on pytest-django's test database
  (API, dashboard, security and the daphne-backed browser tests);
- `LiveWorld`: objects made through the REST API of a live local cluster (end-to-end,
  fault-injection and cluster-backed browser tests), and removed again by `cleanup`.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

API = "/api/v1"
# Generous bounds for things the issue puts no time on (agents, DHCP, guests booting).
SETTLE = 60.0


def ok(reply) -> dict:
    """The JSON of a successful reply; anything >= 400 fails the test with the answer."""
    where = f"{reply.request.method} {reply.request.url}"
    assert reply.status_code < 400, f"{where}: {reply.status_code} {reply.text}"
    return reply.json() if reply.content else {}


def results(client, path: str, **params) -> list[dict]:
    """Every row of a paginated list: `path` is a collection ("hosts") or an API path."""
    rows: list[dict] = []
    url: str | None = path if path.startswith("/") else f"{API}/{path}/"
    query: dict | None = {"page_size": 1000, **params}
    while url:
        body = ok(client.get(url, params=query))
        rows += body["results"]
        url, query = body.get("next"), None
    return rows


# --- in process ---------------------------------------------------------------------------

HOSTS = ("node1", "node2")
HOST_VFS = {"physnet1": 4, "physnet2": 2}
CIDR, SHARED = "192.168.10.0/24", "172.16.0.0/24"  # both tenants' networks, the shared one


def in_process_world(
    passwords: dict[str, str],
    *,
    tenant_admin: bool = False,
    networks: bool = True,
    instances: tuple[str, str] | None = None,
) -> SimpleNamespace:
    """A cluster admin `root`; tenants a and b with members alice and bob (and, with
    `tenant_admin`, carol as an admin of a); hosts node1 and node2 with physnet1 (4 VFs)
    and physnet2 (2 VFs); with `networks`, one SR-IOV network per tenant (VLANs 100 and
    101, both 192.168.10.0/24) and a shared one; with `instances`, one container of
    each tenant on its network, so named. `passwords` maps each user to its password."""
    from django.contrib.auth import get_user_model

    from ciaoweb.inventory.services import register_inventory
    from ciaoweb.networks.services import create_network
    from ciaoweb.tenancy.choices import MembershipRole
    from ciaoweb.tenancy.services import add_member, create_tenant
    from tests.api.helpers import inventory

    world = SimpleNamespace()
    world.admin_user = get_user_model().objects.create_superuser("root", password=passwords["root"])
    world.tenant_a, world.tenant_b = create_tenant("tenant-a"), create_tenant("tenant-b")

    def member(tenant, name: str, role=MembershipRole.MEMBER):
        return add_member(tenant, name, passwords[name], role).user

    world.alice_user = member(world.tenant_a, "alice")
    if tenant_admin:
        world.carol_user = member(world.tenant_a, "carol", MembershipRole.ADMIN)
    world.bob_user = member(world.tenant_b, "bob")
    world.hosts = [register_inventory(n, inventory(n, HOST_VFS)) for n in HOSTS]
    if networks:
        sriov = {"kind": "sriov", "physnet": "physnet1", "ipam": "controller"}
        a, b = world.tenant_a, world.tenant_b
        world.net_a = create_network(tenant=a, name="data", vlan=100, cidr=CIDR, **sriov)
        world.net_b = create_network(tenant=b, name="data", vlan=101, cidr=CIDR, **sriov)
        world.shared = create_network(tenant=None, name="public", vlan=300, cidr=SHARED, **sriov)
    if instances:
        add_instances(world, *instances)
    return world


def add_instances(world: SimpleNamespace, name_a: str, name_b: str) -> SimpleNamespace:
    """`world.inst_a` / `world.inst_b`: a pending container of each tenant on its network."""
    from ciaoweb.instances.services import NetworkRequest, create_instance

    for attr, tenant, network, name in (
        ("inst_a", world.tenant_a, world.net_a, name_a),
        ("inst_b", world.tenant_b, world.net_b, name_b),
    ):
        instance = create_instance(
            tenant=tenant, name=name, kind="container", networks=[NetworkRequest(network=network)]
        )
        setattr(world, attr, instance)
    return world


def end_operations(instance_id) -> None:
    """What the controller's worker does once the agent answered: the instance's active
    operations end (the in-process layers run no worker, so none advances by itself)."""
    from django.utils import timezone

    from ciaoweb.operations.choices import OperationState
    from ciaoweb.operations.models import Operation

    Operation.objects.filter(instance_id=instance_id, state__in=OperationState.ACTIVE).update(
        state=OperationState.SUCCEEDED, step="", finished=timezone.now()
    )


def provisioned(instance):
    """The instance as if its creation had finished: `running`, its operations ended."""
    from ciaoweb.instances.choices import InstanceState
    from ciaoweb.instances.models import Instance

    end_operations(instance.pk)
    Instance.objects.filter(pk=instance.pk).update(state=InstanceState.RUNNING)
    return Instance.objects.get(pk=instance.pk)


def with_clients(world: SimpleNamespace) -> SimpleNamespace:
    """An authenticated API client beside each user: `world.admin`, `world.alice`, ..."""
    from tests.api.helpers import client_for

    world.admin = client_for(world.admin_user)
    for name in ("alice", "bob", "carol"):
        user = getattr(world, f"{name}_user", None)
        if user is not None:
            setattr(world, name, client_for(user))
    return world


# --- a live cluster, through the REST API ---------------------------------------------------


@dataclass
class Tenant:
    id: str
    name: str
    body: dict
    # The tenant's member, when it has one: the login, its token and a client with it.
    username: str | None = None
    password: str | None = None
    token: str | None = None
    client: Any = None


class LiveWorld:
    """What a test (or a module, or a session) created on a live cluster; `cleanup`
    removes it (instances first, then networks, tenants) and fails if anything stays.

    Names get `suffix` ("-<suffix>", random by default) so tests sharing a cluster stay
    apart; `suffix=""` keeps them exactly as given."""

    def __init__(self, cluster, suffix: str | None = None) -> None:
        self.cluster = cluster
        self.suffix = secrets.token_hex(3) if suffix is None else suffix
        self.tenants: list[Tenant] = []
        self.networks: list[dict] = []
        self.instances: list[str] = []

    @property
    def api(self):
        return self.cluster.api

    def name(self, label: str) -> str:
        return f"{label}-{self.suffix}" if self.suffix else label

    def tenant(self, label: str, member: bool = True) -> Tenant:
        """Created by the admin; with `member`, a member `<name>-user` with a generated
        password, logged in."""
        name = self.name(label)
        body = ok(self.api.post(f"{API}/tenants/", json={"name": name}))
        made = Tenant(body["id"], name, body)
        if member:
            made.username, made.password = f"{name}-user", secrets.token_urlsafe(12)
            ok(
                self.api.post(
                    f"{API}/tenants/{made.id}/members/",
                    json={"username": made.username, "password": made.password, "role": "member"},
                )
            )
            made.token = self.cluster.token_for(made.username, made.password)
            made.client = self.cluster.client(made.token)
        self.tenants.append(made)
        return made

    def network(
        self,
        tenant: Tenant,
        name: str,
        cidr: str,
        ipam: str = "controller",
        physnet: str = "physnet1",
        by_admin: bool = False,
        **extra,
    ) -> dict:
        """An SR-IOV network of the tenant, created by its member as a tenant would, or
        with `by_admin` by the admin (provider attributes such as `vlan`, no member)."""
        body = {"name": name, "kind": "sriov", "physnet": physnet, "cidr": cidr, "ipam": ipam}
        body.update(extra)
        if by_admin:
            body["tenant"] = tenant.id
        network = ok((self.api if by_admin else tenant.client).post(f"{API}/networks/", json=body))
        self.networks.append(network)
        return network

    def instance(
        self, tenant: Tenant, name: str, kind: str, networks: list[dict], host: str | None = None
    ) -> dict:
        """Created by the admin (who alone may pick the host) for the tenant."""
        body = {
            "name": name,
            "kind": kind,
            "tenant": tenant.id,
            "networks": [{"network": n["id"]} for n in networks],
        }
        if host:
            body["host"] = host
        instance = ok(self.api.post(f"{API}/instances/", json=body))
        self.instances.append(instance["id"])
        return instance

    def get(self, instance_id: str) -> dict:
        return ok(self.api.get(f"{API}/instances/{instance_id}/"))

    def wait(self, instance_id: str, timeout: float = SETTLE) -> dict:
        """The instance once it is `running` or `error`."""
        return self.cluster.wait_instance(instance_id, timeout=timeout)

    def running(self, instance_id: str, timeout: float = SETTLE) -> dict:
        body = self.wait(instance_id, timeout=timeout)
        assert body["state"] == "running", f"{body['name']}: {body['state']} {body['error']}"
        return body

    def delete_instance(
        self, instance_id: str, timeout: float = SETTLE, accepted: tuple[int, ...] = (204, 404)
    ) -> None:
        """DELETE (answered with one of `accepted`), then wait until the instance is gone."""
        reply = self.api.delete(f"{API}/instances/{instance_id}/")
        assert reply.status_code in accepted, reply.text
        try:
            self.cluster.wait_for(
                lambda: self.api.get(f"{API}/instances/{instance_id}/").status_code == 404,
                timeout=timeout,
                interval=0.1,
                what=f"instance {instance_id} gone",
            )
        except Exception as exc:
            body = self.api.get(f"{API}/instances/{instance_id}/").text
            raise AssertionError(f"{exc}: {body}") from None
        with contextlib.suppress(ValueError):
            self.instances.remove(instance_id)

    def close(self) -> None:
        for tenant in self.tenants:
            if tenant.client is not None:
                tenant.client.close()

    def cleanup(self) -> None:
        errors = []
        for instance_id in list(self.instances):
            if self.api.get(f"{API}/instances/{instance_id}/").status_code == 404:
                continue
            self.api.delete(f"{API}/instances/{instance_id}/")
        for instance_id in list(self.instances):
            try:
                self.delete_instance(instance_id)
            except Exception as exc:  # noqa: BLE001 - keep cleaning, report at the end
                errors.append(f"instance {instance_id}: {exc}")
        for network in self.networks:
            reply = self.api.delete(f"{API}/networks/{network['id']}/")
            if reply.status_code not in (204, 404):
                errors.append(f"network {network['name']}: {reply.status_code} {reply.text}")
        self.close()
        for tenant in self.tenants:
            reply = self.api.delete(f"{API}/tenants/{tenant.id}/")
            if reply.status_code not in (204, 404):
                errors.append(f"tenant {tenant.name}: {reply.status_code} {reply.text}")
        assert not errors, "cleanup failed: " + "; ".join(errors)
