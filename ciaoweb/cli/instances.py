"""`ciao instance create|delete|migrate|attach|detach`."""

from __future__ import annotations

from typing import Any

import click

from ciaoweb.cli.errors import ApiError, CliError, ExitCode
from ciaoweb.cli.reads import lookup, name_argument, tenant_scope
from ciaoweb.cli.resources import INSTANCE, NETWORK, resolve, resolve_id, values
from ciaoweb.cli.state import State, common_options, pass_state, wait_options
from ciaoweb.cli.waiting import wait_gone, wait_operation
from ciaoweb.instances.choices import InstanceKind, InstanceState

SPEC_KEYS = ("mac", "ip", "ipv6")


class NetworkSpec(click.ParamType):
    """`NAME_OR_ID[,mac=MAC][,ip=IP][,ipv6=IPV6]` -> `{"network": ..., "mac": ..., ...}`."""

    name = "network"

    def convert(self, value: Any, param, ctx) -> dict[str, str]:
        if isinstance(value, dict):
            return value
        network, *pairs = str(value).split(",")
        spec = {"network": network.strip()}
        for pair in pairs:
            key, sep, item = pair.partition("=")
            key = key.strip()
            if not sep or key not in SPEC_KEYS or not item.strip():
                self.fail(
                    f"{pair!r} in {value!r}: expected mac=MAC, ip=IP or ipv6=IPV6", param, ctx
                )
            spec[key] = item.strip()
        if not spec["network"]:
            self.fail(f"{value!r}: the network's name or id comes first", param, ctx)
        return spec


def _network_of(state: State, spec: dict[str, str], tenant_id: str | None) -> dict[str, str]:
    """A spec with the network's id; with a tenant, a name means that tenant's network
    or a shared one."""
    where = None
    if tenant_id:
        where = lambda n: n.get("tenant") in (tenant_id, None) or n.get("shared")  # noqa: E731
    scope = " for that tenant" if tenant_id else ""
    network = resolve(state.client, NETWORK, spec["network"], where=where, scope=scope)
    return {**spec, "network": network["id"], "_tenant": network.get("tenant")}


def _needs_tenant(exc: ApiError) -> bool:
    return exc.status == 400 and isinstance(exc.body, dict) and set(exc.body) == {"tenant"}


@click.command("create")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(values(InstanceKind.CHOICES)),
    default=InstanceKind.CONTAINER,
    show_default=True,
)
@click.option(
    "--network",
    "networks",
    type=NetworkSpec(),
    multiple=True,
    metavar="NETWORK[,mac=MAC][,ip=IP][,ipv6=IPV6]",
    help="a network (name or id), repeatable: eth1, eth2... (eth0 is the tenant's default)",
)
@click.option("--host", help="the host to run on, a name or id (admins)")
@click.option("--tenant", metavar="TENANT", help="the owner, a name or id (admins)")
@wait_options
@common_options
@pass_state
def create(state: State, name, kind, networks, host, tenant, wait: bool, timeout: float) -> None:
    """Create an instance NAME.

    \b
    ciao instance create web --network data --wait
    ciao instance create db --kind vm --network data,ip=192.168.10.20 \\
        --network storage,mac=02:00:00:00:00:01 --host node2 --tenant acme
    """
    tenant_id = resolve_id(state.client, "tenants", tenant) if tenant else None
    specs = [_network_of(state, spec, tenant_id) for spec in networks]
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "networks": [{k: v for k, v in s.items() if k != "_tenant"} for s in specs],
    }
    if host:
        body["host"] = host
    if tenant_id:
        body["tenant"] = tenant_id
    try:
        instance = state.client.post("instances/", body)
    except ApiError as exc:
        # An admin without --tenant: the tenant its networks belong to, when they agree.
        owners = {s["_tenant"] for s in specs if s["_tenant"]}
        if tenant_id or not _needs_tenant(exc) or len(owners) != 1:
            raise
        instance = state.client.post("instances/", {**body, "tenant": owners.pop()})
    if wait:
        instance = _wait_for(state, instance, timeout)
    state.one(INSTANCE, instance)


def _wait_for(state: State, instance: dict, timeout: float) -> dict:
    """The instance after its latest operation ended; exit 8 if it ended in `error`."""
    op = instance.get("operation")
    if op:
        wait_operation(state.client, op["id"], timeout, state.note)
    instance = state.client.get(f"instances/{instance['id']}/")
    if instance["state"] == InstanceState.ERROR:
        raise CliError(
            f"instance {instance['name']} is in error: {instance.get('error') or '?'}",
            ExitCode.FAILED,
        )
    return instance


@click.command("delete")
@name_argument(INSTANCE)
@tenant_scope
@wait_options
@common_options
@pass_state
def delete(state: State, name_or_id: str, tenant, wait: bool, timeout: float) -> None:
    """Delete an instance (it shows `deleting` until its host released it).

    \b
    ciao instance delete web --wait
    """
    instance = lookup(state, INSTANCE, name_or_id, tenant)
    path = f"instances/{instance['id']}/"
    state.client.delete(path)
    if wait:
        try:
            op = (state.client.get(path).get("operation") or {}).get("id")
        except ApiError as exc:
            if exc.status != 404:
                raise
            op = None  # already gone
        wait_gone(state.client, path, op, timeout, state.note)
        state.done(f"instance {instance['name']} deleted")
    else:
        state.done(f"instance {instance['name']} deleting")


@click.command("migrate")
@name_argument(INSTANCE)
@click.option("--host", help="the target host, a name or id (admins; else the scheduler picks)")
@tenant_scope
@wait_options
@common_options
@pass_state
def migrate(state: State, name_or_id: str, host, tenant, wait: bool, timeout: float) -> None:
    """Move an instance to another host, keeping its MACs and IPs.

    \b
    ciao instance migrate web --host node2 --wait
    """
    instance = lookup(state, INSTANCE, name_or_id, tenant)
    body = {"host": host} if host else {}
    instance = state.client.post(f"instances/{instance['id']}/migrate/", body)
    if wait:
        instance = _wait_for(state, instance, timeout)
    state.one(INSTANCE, instance)


@click.command("attach")
@name_argument(INSTANCE)
@click.argument("network", type=NetworkSpec(), metavar="NETWORK[,mac=MAC][,ip=IP][,ipv6=IPV6]")
@tenant_scope
@wait_options
@common_options
@pass_state
def attach(state: State, name_or_id: str, network, tenant, wait: bool, timeout: float) -> None:
    """Hot-plug an SR-IOV interface on NETWORK into a running instance (its next ethN).

    \b
    ciao instance attach web storage --wait
    ciao instance attach db storage,ip=192.168.20.5
    """
    instance = lookup(state, INSTANCE, name_or_id, tenant)
    spec = _network_of(state, network, instance.get("tenant"))
    spec.pop("_tenant")
    attachment = state.client.post(f"instances/{instance['id']}/attachments/", spec)
    state.note(f"{attachment['ifname']} attaching to {instance['name']}")
    instance = state.client.get(f"instances/{instance['id']}/")
    if wait:
        instance = _wait_for(state, instance, timeout)
    state.one(INSTANCE, instance)


@click.command("detach")
@name_argument(INSTANCE)
@click.argument("ifname")
@tenant_scope
@wait_options
@common_options
@pass_state
def detach(state: State, name_or_id: str, ifname: str, tenant, wait: bool, timeout: float) -> None:
    """Unplug the instance's interface IFNAME (not eth0); its VF is reset and freed.

    \b
    ciao instance detach web eth2 --wait
    """
    instance = lookup(state, INSTANCE, name_or_id, tenant)
    found = [a for a in instance.get("attachments", []) if a.get("ifname") == ifname]
    if not found:
        names = ", ".join(a["ifname"] for a in instance.get("attachments", []))
        raise CliError(
            f"instance {instance['name']} has no interface {ifname} (it has {names})",
            ExitCode.NOT_FOUND,
        )
    state.client.delete(f"attachments/{found[0]['id']}/")
    state.note(f"{ifname} detaching from {instance['name']}")
    instance = state.client.get(f"instances/{instance['id']}/")
    if wait:
        instance = _wait_for(state, instance, timeout)
    state.one(INSTANCE, instance)


COMMANDS = (create, delete, migrate, attach, detach)
