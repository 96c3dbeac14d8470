"""Task names and routing shared by the controller and the node agents.

Both sides talk by task *name* only, so an agent never imports controller code (nor the
ORM) and the controller never imports agent code. Node tasks carry a `node` keyword and
go to that node's queue; everything else goes to the controller's queue.
"""

from __future__ import annotations

from typing import Any

CONTROLLER_QUEUE = "controller"
AGENT_PREFIX = "agent."


def node_queue(node: str) -> str:
    return f"node.{node}"


def route_task(name: str, args: Any, kwargs: dict | None, options: dict, task=None, **kw) -> dict:
    """Celery router: `agent.*` to `node.<kwargs['node']>`, the rest to `controller`."""
    if name.startswith(AGENT_PREFIX):
        node = (kwargs or {}).get("node")
        if not node:
            raise ValueError(f"agent task {name} sent without a node")
        return {"queue": node_queue(node)}
    return {"queue": CONTROLLER_QUEUE}


# Controller → agent
ENSURE_INSTANCE = "agent.ensure_instance"
RELEASE_INSTANCE = "agent.release_instance"
ENSURE_DHCP_SERVER = "agent.ensure_dhcp_server"
REMOVE_DHCP_SERVER = "agent.remove_dhcp_server"
RECONCILE = "agent.reconcile"

# Agent → controller
REGISTER_INVENTORY = "controller.register_inventory"
HEARTBEAT = "controller.heartbeat"
INSTANCE_APPLIED = "controller.instance_applied"
INSTANCE_RELEASED = "controller.instance_released"
DHCP_SERVER_APPLIED = "controller.dhcp_server_applied"
LEASE_EVENT = "controller.lease_event"
AGENT_EVENT = "controller.agent_event"

# API side → controller worker (after commit)
ADVANCE_OPERATION = "controller.advance_operation"
NETWORK_CHANGED = "controller.network_changed"
NETWORK_DELETED = "controller.network_deleted"
OPERATIONS_WATCHDOG = "controller.operations_watchdog"

CELERY_COMMON = {
    "task_routes": (route_task,),
    "task_serializer": "json",
    "accept_content": ["json"],
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_ignore_result": True,
    "broker_connection_retry_on_startup": True,
    # Unacked tasks of a killed worker come back after this; reconcile covers the gap.
    "broker_transport_options": {"visibility_timeout": 120},
}
