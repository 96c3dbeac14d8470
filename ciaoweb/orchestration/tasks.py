"""Controller-queue tasks: what agents report, applied by the controller's worker.

`sender` is the proved sender of the message (ciaoweb.core.signing puts it there after
checking the signature); `trust` decides what that sender may say before anything runs.
"""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError

from ciaoweb import taskrouting as names
from ciaoweb.celery import app
from ciaoweb.inventory.services import check_liveness

from . import dhcp, engine, results, trust
from .sender import broker

# A database that is briefly unavailable (restart, SQLite writer lock) is worth a retry.
CONTROLLER_TASK = {
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 0.5,
    "retry_backoff_max": 10,
    "max_retries": 8,
}


# --- from agents: each about its own host only ------------------------------------------


@app.task(name=names.REGISTER_INVENTORY, **CONTROLLER_TASK)
def register_inventory(
    node: str,
    inventory: dict,
    owners: dict,
    sender: str = "",
    registered_at: Any = None,
    resume: Any = True,
) -> None:
    if trust.from_node(sender, node, "register_inventory"):
        results.inventory_registered(node, inventory, owners, registered_at, resume is not False)


@app.task(name=names.HEARTBEAT, **CONTROLLER_TASK)
def heartbeat(node: str, sender: str = "") -> None:
    if trust.from_node(sender, node, "heartbeat"):
        results.host_heartbeat(node)


@app.task(name=names.INSTANCE_APPLIED, **CONTROLLER_TASK)
def instance_applied(node: str, result: dict, context: dict, sender: str = "") -> None:
    if trust.from_node(sender, node, "instance_applied"):
        results.instance_applied(node, result, context)


@app.task(name=names.INSTANCE_RELEASED, **CONTROLLER_TASK)
def instance_released(node: str, result: dict, context: dict, sender: str = "") -> None:
    if trust.from_node(sender, node, "instance_released"):
        results.instance_released(node, result, context)


@app.task(name=names.DHCP_SERVER_APPLIED, **CONTROLLER_TASK)
def dhcp_server_applied(node: str, network_id: str, sender: str = "", **outcome) -> None:
    if trust.from_node(sender, node, "dhcp_server_applied"):
        results.dhcp_server_applied(node, network_id, **outcome)


@app.task(name=names.LEASE_EVENT, **CONTROLLER_TASK)
def lease_event(node: str, event: dict, sender: str = "") -> None:
    if trust.from_node(sender, node, "lease_event"):
        results.lease_event_from(node, event)


@app.task(name=names.AGENT_EVENT, **CONTROLLER_TASK)
def agent_event(node: str, event: dict, sender: str = "") -> None:
    if trust.from_node(sender, node, "agent_event"):
        results.agent_event(node, event)


# --- from the web process and the controller itself (beat, workflows) -------------------


@app.task(name=names.ADVANCE_OPERATION, **CONTROLLER_TASK)
def advance_operation(operation_id: str, sender: str = "") -> None:
    if trust.internal(sender, "advance_operation"):
        engine.advance(operation_id)


@app.task(name=names.NETWORK_CHANGED, **CONTROLLER_TASK)
def network_changed(network_id: str, sender: str = "") -> None:
    if trust.internal(sender, "network_changed"):
        dhcp.ensure_server(network_id)


@app.task(name=names.NETWORK_DELETED, **CONTROLLER_TASK)
def network_deleted(network_id: str, sender: str = "") -> None:
    if trust.internal(sender, "network_deleted"):
        dhcp.remove_server(network_id)


@app.task(name=names.OPERATIONS_WATCHDOG, **CONTROLLER_TASK)
def operations_watchdog(sender: str = "") -> None:
    if trust.internal(sender, "operations_watchdog"):
        engine.watchdog()


@app.task(name=names.CHECK_HEARTBEATS)
def check_heartbeats(sender: str = "") -> None:
    if trust.internal(sender, "check_heartbeats"):
        check_liveness(broker())  # the agents' liveness keys live in the broker's Redis
