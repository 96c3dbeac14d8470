"""`ciao <resource> list|show` for every resource, built from `resources.RESOURCES`."""

from __future__ import annotations

from typing import Any

import click

from ciaoweb.cli.resources import Filter, Resource, resolve, resolve_id
from ciaoweb.cli.state import State, common_params, current_state


def complete_names(resource: Resource):
    """Shell completion of a resource's names from the API; nothing when it cannot ask."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        if resource.name_field is None:
            return []
        try:
            state = ctx.find_object(State) or State()
            rows = state.client.get(f"{resource.path}/").get("results", [])
        except Exception:  # noqa: BLE001 - completion must never break the shell
            return []
        names = {str(r.get(resource.name_field)) for r in rows}
        return sorted(n for n in names if n.startswith(incomplete))

    return complete


def ref_argument(resource: Resource, name: str = "name_or_id") -> click.Argument:
    return click.Argument(
        [name], metavar=f"{resource.name.upper()}", shell_complete=complete_names(resource)
    )


def name_argument(resource: Resource):
    """Decorator: the NAME_OR_ID argument, first on the command line."""

    def decorator(f):
        f.__click_params__ = [*getattr(f, "__click_params__", []), ref_argument(resource)]
        return f

    return decorator


SCOPE_HELP = "the tenant (name or id) whose object the name means"


def tenant_scope_option() -> click.Option:
    return click.Option(["--tenant"], metavar="TENANT", help=SCOPE_HELP)


def tenant_scope(f):
    """Decorator: `--tenant`, for names that are unique per tenant only."""
    return click.option("--tenant", metavar="TENANT", help=SCOPE_HELP)(f)


def lookup(state: State, resource: Resource, value: str, tenant: str | None = None) -> dict:
    """`value` (a name or an id) as the object; for tenant-scoped resources `tenant`
    narrows the name to that tenant's object."""
    if not tenant:
        return resolve(state.client, resource, value)
    tenant_id = resolve_id(state.client, "tenants", tenant)
    return resolve(
        state.client,
        resource,
        value,
        params={"tenant": tenant_id},
        where=lambda obj: obj.get("tenant") == tenant_id,
        scope=f" in tenant {tenant}",
    )


def filter_option(item: Filter) -> click.Option:
    if item.flag:
        names = [f"--{item.option}/--no-{item.option}", item.dest]
        return click.Option(names, default=None, help=item.help)
    kind: Any = click.Choice(item.choices) if item.choices else None
    return click.Option([f"--{item.option}", item.dest], type=kind, help=item.help)


def query(state: State, resource: Resource, options: dict[str, Any]) -> dict[str, str]:
    params = {}
    for item in resource.filters:
        value = options.get(item.dest)
        if value is None:
            continue
        if item.flag:
            value = "true" if value else "false"
        elif item.ref:
            value = resolve_id(state.client, item.ref, value)
        params[item.query_param] = value
    return params


def list_command(resource: Resource) -> click.Command:
    def callback(limit: int | None, **options: Any) -> None:
        state = current_state()
        rows = state.client.list(
            f"{resource.path}/", query(state, resource, options), limit=limit or None
        )
        state.listing(resource, rows)

    default = resource.default_limit
    limit = click.Option(
        ["--limit"],
        type=click.IntRange(min=0),
        default=default,
        show_default=default is not None,
        help="at most this many rows" + (" (0: all)" if default else ""),
    )
    return click.Command(
        "list",
        callback=callback,
        params=[*(filter_option(f) for f in resource.filters), limit, *common_params()],
        help=f"List {resource.plural} (every page).",
    )


def show_command(resource: Resource) -> click.Command:
    def callback(name_or_id: str, tenant: str | None = None) -> None:
        state = current_state()
        state.detail(resource, lookup(state, resource, name_or_id, tenant))

    scope = [tenant_scope_option()] if resource.tenant_scoped else []
    known_as = "name or id" if resource.name_field else "id"
    return click.Command(
        "show",
        callback=callback,
        params=[ref_argument(resource), *scope, *common_params()],
        help=f"Show one {resource.name} by {known_as}.",
    )


def resource_group(resource: Resource) -> click.Group:
    group = click.Group(resource.name, help=resource.about)
    group.add_command(list_command(resource))
    group.add_command(show_command(resource))
    return group
