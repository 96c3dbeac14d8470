"""`ciao network create|update|delete`."""

from __future__ import annotations

from typing import Any

import click

from ciaoweb.cli.reads import lookup, name_argument, tenant_scope
from ciaoweb.cli.resources import NETWORK, resolve_id, values
from ciaoweb.cli.state import State, common_options, pass_state
from ciaoweb.networks.choices import Ipam, Ipv6Mode, NetworkKind

# The attributes create and update share: (option, body field, click type, help).
ATTRIBUTES: tuple[tuple[str, str, Any, str], ...] = (
    ("--physnet", "physnet", str, "the physical network (sriov), e.g. physnet1"),
    ("--vlan", "vlan", int, "VLAN id (admins; else one of the physnet's tenant range)"),
    ("--cidr", "cidr", str, "IPv4 subnet, e.g. 192.168.10.0/24"),
    ("--gateway", "gateway", str, "gateway address (default: the first usable one)"),
    ("--mtu", "mtu", int, "MTU"),
    ("--dns-domain", "dns_domain", str, "DNS domain of the network's DHCP server"),
    ("--ipam", "ipam", click.Choice(values(Ipam.CHOICES)), "controller, dynamic or underlay"),
    ("--ipv6-cidr", "ipv6_cidr", str, "IPv6 prefix for dual stack, e.g. fd00:10::/64"),
    (
        "--ipv6-mode",
        "ipv6_mode",
        click.Choice(values(Ipv6Mode.CHOICES)),
        "slaac (the MAC's EUI-64, a /64) or dhcpv6 (the default: reserved by the controller)",
    ),
)


def attribute_options(f):
    for option, field, kind, text in reversed(ATTRIBUTES):
        f = click.option(option, field, type=kind, default=None, help=text)(f)
    return f


def body_of(options: dict[str, Any]) -> dict[str, Any]:
    """Only what was given: the API keeps or defaults the rest."""
    return {field: options[field] for _, field, _, _ in ATTRIBUTES if options[field] is not None}


@click.command("create")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(values(NetworkKind.CHOICES)),
    default=NetworkKind.SRIOV,
    show_default=True,
    help="the API creates sriov networks (overlay ones come with their tenant)",
)
@attribute_options
@click.option("--tenant", metavar="TENANT", help="owner, a name or id (admins)")
@click.option("--shared", is_flag=True, default=None, help="usable by every tenant (admins)")
@common_options
@pass_state
def create(state: State, name: str, kind: str, tenant: str | None, shared: bool | None, **options):
    """Create a network NAME.

    \b
    ciao network create data --physnet physnet1 --cidr 192.168.10.0/24
    ciao network create campus --physnet physnet2 --vlan 300 --cidr 192.168.30.0/24 \\
        --ipam underlay --tenant acme
    """
    body: dict[str, Any] = {"name": name, "kind": kind, **body_of(options)}
    if tenant:
        body["tenant"] = resolve_id(state.client, "tenants", tenant)
    if shared is not None:
        body["shared"] = shared
    state.one(NETWORK, state.client.post("networks/", body))


@click.command("update")
@name_argument(NETWORK)
@click.option("--name", "new_name", help="a new name")
@attribute_options
@click.option("--shared/--no-shared", default=None, help="usable by every tenant (admins)")
@tenant_scope
@common_options
@pass_state
def update(
    state: State, name_or_id: str, new_name: str | None, shared: bool | None, tenant, **options
):
    """Change a network's attributes (only those given).

    \b
    ciao network update data --mtu 9000 --dns-domain data.example
    """
    body = body_of(options)
    if new_name:
        body["name"] = new_name
    if shared is not None:
        body["shared"] = shared
    if not body:
        raise click.UsageError("nothing to change: give at least one attribute")
    network = lookup(state, NETWORK, name_or_id, tenant)
    state.one(NETWORK, state.client.patch(f"networks/{network['id']}/", body))


@click.command("delete")
@name_argument(NETWORK)
@tenant_scope
@common_options
@pass_state
def delete(state: State, name_or_id: str, tenant: str | None) -> None:
    """Delete a network (409 while instances use it).

    \b
    ciao network delete data
    """
    network = lookup(state, NETWORK, name_or_id, tenant)
    state.client.delete(f"networks/{network['id']}/")
    state.done(f"network {network['name']} deleted")


COMMANDS = (create, update, delete)
