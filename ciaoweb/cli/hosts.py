"""`ciao host evacuate|restore` (cluster admins)."""

from __future__ import annotations

import click

from ciaoweb.cli.reads import lookup, name_argument
from ciaoweb.cli.resources import HOST
from ciaoweb.cli.state import State, common_options, pass_state, wait_options
from ciaoweb.cli.waiting import wait_operation
from ciaoweb.operations.choices import OperationKind


@click.command("evacuate")
@name_argument(HOST)
@wait_options
@common_options
@pass_state
def evacuate(state: State, name_or_id: str, wait: bool, timeout: float) -> None:
    """Put a host in maintenance: no new instances, its running ones migrate away.

    \b
    ciao host evacuate node1 --wait
    """
    host = lookup(state, HOST, name_or_id)
    host = state.client.post(f"hosts/{host['id']}/evacuate/")
    if wait:
        # The newest evacuation of the host: the one just opened, or the one already
        # running (a second evacuate joins it).
        found = state.client.get(
            "operations/", {"host": host["id"], "kind": OperationKind.EVACUATE}
        ).get("results", [])
        if found:
            wait_operation(state.client, found[0]["id"], timeout, state.note)
        host = state.client.get(f"hosts/{host['id']}/")
    state.one(HOST, host)


@click.command("restore")
@name_argument(HOST)
@common_options
@pass_state
def restore(state: State, name_or_id: str) -> None:
    """Put a host back in service (a running evacuation stops starting migrations).

    \b
    ciao host restore node1
    """
    host = lookup(state, HOST, name_or_id)
    state.one(HOST, state.client.post(f"hosts/{host['id']}/restore/"))


COMMANDS = (evacuate, restore)
