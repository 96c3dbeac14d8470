"""`ciao tenant create|delete`, `ciao tenant member list|add`, `ciao tenant quota show|set`."""

from __future__ import annotations

import click

from ciaoweb.cli.reads import lookup, name_argument
from ciaoweb.cli.resources import MEMBER_COLUMNS, QUOTA_COLUMNS, TENANT, quota_rows, values
from ciaoweb.cli.state import State, common_options, pass_state
from ciaoweb.tenancy.choices import MembershipRole


@click.command("create")
@click.argument("name")
@common_options
@pass_state
def create(state: State, name: str) -> None:
    """Create a tenant NAME (with its overlay network `default`; admins).

    \b
    ciao tenant create acme
    """
    state.one(TENANT, state.client.post("tenants/", {"name": name}))


@click.command("delete")
@name_argument(TENANT)
@common_options
@pass_state
def delete(state: State, name_or_id: str) -> None:
    """Delete a tenant and its networks (409 while it has instances; admins).

    \b
    ciao tenant delete acme
    """
    tenant = lookup(state, TENANT, name_or_id)
    state.client.delete(f"tenants/{tenant['id']}/")
    state.done(f"tenant {tenant['name']} deleted")


@click.group("member")
def member() -> None:
    """A tenant's members."""


@member.command("list")
@name_argument(TENANT)
@common_options
@pass_state
def member_list(state: State, name_or_id: str) -> None:
    """List a tenant's members.

    \b
    ciao tenant member list acme
    """
    tenant = lookup(state, TENANT, name_or_id)
    state.rows(state.client.list(f"tenants/{tenant['id']}/members/"), MEMBER_COLUMNS)


@member.command("add")
@name_argument(TENANT)
@click.argument("username")
@click.option("--password", help="a new user's password (an existing user keeps its own)")
@click.option(
    "--role",
    type=click.Choice(values(MembershipRole.CHOICES)),
    default=MembershipRole.MEMBER,
    show_default=True,
    help="admin: may add members to the tenant",
)
@common_options
@pass_state
def member_add(state: State, name_or_id: str, username: str, password, role: str) -> None:
    """Add USERNAME to a tenant, creating the user if needed.

    \b
    ciao tenant member add acme alice --password 's3cret-alice'
    """
    tenant = lookup(state, TENANT, name_or_id)
    body = {"username": username, "role": role}
    if password:
        body["password"] = password
    membership = state.client.post(f"tenants/{tenant['id']}/members/", body)
    state.rows([membership], MEMBER_COLUMNS)


@click.group("quota")
def quota() -> None:
    """A tenant's limits and use."""


@quota.command("show")
@name_argument(TENANT)
@common_options
@pass_state
def quota_show(state: State, name_or_id: str) -> None:
    """Show a tenant's quota: each limit and its use.

    \b
    ciao tenant quota show acme
    """
    tenant = lookup(state, TENANT, name_or_id)
    _show_quota(state, state.client.get(f"tenants/{tenant['id']}/quota/"))


@quota.command("set")
@name_argument(TENANT)
@click.option("--networks", type=click.IntRange(min=0), help="networks besides `default`")
@click.option("--instances", type=click.IntRange(min=0), help="instances in any state")
@click.option("--vfs", type=click.IntRange(min=0), help="VFs its instances hold")
@common_options
@pass_state
def quota_set(state: State, name_or_id: str, **limits: int | None) -> None:
    """Change some of a tenant's limits (admins).

    \b
    ciao tenant quota set acme --instances 20 --vfs 40
    """
    body = {k: v for k, v in limits.items() if v is not None}
    if not body:
        raise click.UsageError("nothing to change: give --networks, --instances or --vfs")
    tenant = lookup(state, TENANT, name_or_id)
    _show_quota(state, state.client.patch(f"tenants/{tenant['id']}/quota/", body))


def _show_quota(state: State, body: dict) -> None:
    if state.structured:
        state.data(body)
    else:
        state.rows(quota_rows(body), QUOTA_COLUMNS)


COMMANDS = (create, delete, member, quota)
