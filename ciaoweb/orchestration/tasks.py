"""Controller-queue tasks: what agents report, applied by the controller's worker."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

from ciaoweb import taskrouting as names
from ciaoweb.celery import app
from ciaoweb.inventory.services import mark_stale_hosts_offline

from . import dhcp, engine, results

# A database that is briefly unavailable (restart, SQLite writer lock) is worth a retry.
CONTROLLER_TASK = {
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 0.5,
    "retry_backoff_max": 10,
    "max_retries": 8,
}


@app.task(name=names.REGISTER_INVENTORY, **CONTROLLER_TASK)
def register_inventory(node: str, inventory: dict, owners: dict) -> None:
    results.inventory_registered(node, inventory, owners)


@app.task(name=names.HEARTBEAT, **CONTROLLER_TASK)
def heartbeat(node: str) -> None:
    results.host_heartbeat(node)


@app.task(name=names.INSTANCE_APPLIED, **CONTROLLER_TASK)
def instance_applied(node: str, result: dict, context: dict) -> None:
    results.instance_applied(node, result, context)


@app.task(name=names.INSTANCE_RELEASED, **CONTROLLER_TASK)
def instance_released(node: str, result: dict, context: dict) -> None:
    results.instance_released(node, result, context)


@app.task(name=names.DHCP_SERVER_APPLIED, **CONTROLLER_TASK)
def dhcp_server_applied(node: str, network_id: str, **outcome) -> None:
    results.dhcp_server_applied(node, network_id, **outcome)


@app.task(name=names.LEASE_EVENT, **CONTROLLER_TASK)
def lease_event(node: str, event: dict) -> None:
    results.apply_lease_event(event)


@app.task(name=names.AGENT_EVENT, **CONTROLLER_TASK)
def agent_event(node: str, event: dict) -> None:
    results.agent_event(node, event)


@app.task(name=names.ADVANCE_OPERATION, **CONTROLLER_TASK)
def advance_operation(operation_id: str) -> None:
    engine.advance(operation_id)


@app.task(name=names.NETWORK_CHANGED, **CONTROLLER_TASK)
def network_changed(network_id: str) -> None:
    dhcp.ensure_server(network_id)


@app.task(name=names.NETWORK_DELETED, **CONTROLLER_TASK)
def network_deleted(network_id: str) -> None:
    dhcp.remove_server(network_id)


@app.task(name=names.OPERATIONS_WATCHDOG, **CONTROLLER_TASK)
def operations_watchdog() -> None:
    engine.watchdog()


@app.task(name="controller.check_heartbeats")
def check_heartbeats() -> None:
    mark_stale_hosts_offline()
