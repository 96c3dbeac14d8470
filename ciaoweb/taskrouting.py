"""Task names and routing shared by the controller and the node agents.

Both sides talk by task *name* only, so an agent never imports controller code (nor the
ORM) and the controller never imports agent code. Node tasks carry a `node` keyword and
go to that node's queue; everything else goes to the controller's queue.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from ciaoweb.core.signing import CELERY_SETTINGS as SIGNED_MESSAGES

CONTROLLER_QUEUE = "controller"
# The hosts' liveness check has a queue of its own, consumed by a worker of its own (and
# by the controller's too, as a fallback): behind a burst's backlog on `controller` every
# check expired and no dead host was ever declared offline.
LIVENESS_QUEUE = "controller.liveness"
AGENT_PREFIX = "agent."


def node_queue(node: str) -> str:
    return f"node.{node}"


def route_task(name: str, args: Any, kwargs: dict | None, options: dict, task=None, **kw) -> dict:
    """Celery router: `agent.*` to `node.<kwargs['node']>`, the liveness check to its own
    queue, the rest to `controller`."""
    if name == CHECK_HEARTBEATS:
        return {"queue": LIVENESS_QUEUE}
    if name.startswith(AGENT_PREFIX):
        node = (kwargs or {}).get("node")
        if not node:
            raise ValueError(f"agent task {name} sent without a node")
        return {"queue": node_queue(node)}
    return {"queue": CONTROLLER_QUEUE}


# Controller → agent
ENSURE_INSTANCE = "agent.ensure_instance"
RELEASE_INSTANCE = "agent.release_instance"
UNPLUG_INTERFACES = "agent.unplug_interfaces"
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

# What an agent understands beyond its tasks' first form, listed in its inventory: the
# controller is upgraded before the nodes, and must not send a spec an older agent would
# misread. `dhcp.partial`: an `ensure_dhcp_server` spec with `partial` (its MACs only; an
# older agent would take the few listed for the whole list and drop the rest).
FEATURE_DHCP_PARTIAL = "dhcp.partial"
AGENT_FEATURES = (FEATURE_DHCP_PARTIAL,)

# API side → controller worker (after commit)
ADVANCE_OPERATION = "controller.advance_operation"
NETWORK_CHANGED = "controller.network_changed"
NETWORK_DELETED = "controller.network_deleted"
OPERATIONS_WATCHDOG = "controller.operations_watchdog"
CHECK_HEARTBEATS = "controller.check_heartbeats"

CELERY_COMMON = {
    "task_routes": (route_task,),
    # Every message signed by its sender, task name and id inside (ciaoweb.core.signing).
    **SIGNED_MESSAGES,
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_ignore_result": True,
    # No result backend (disabled), so one instance serves every thread. Celery otherwise
    # makes one per thread, looking up the backends' entry points each time, and daphne
    # runs each request on a new thread: 16 ms of CPU per request that queued a task.
    "result_backend_thread_safe": True,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {
        # Unacked tasks of a killed worker come back after this; reconcile covers the gap.
        "visibility_timeout": 120,
        # One Redis list per queue (we use no priorities): the broker's ACL names each
        # key exactly (ciaoweb.core.broker_acl), no `<queue>\x06\x16<n>` lists.
        "priority_steps": [0],
    },
    # Producers publish straight to the `controller` list (default exchange): declaring
    # it would need LLEN on it and its binding set, which agents and the web may not touch.
    "task_queues": (
        Queue(
            CONTROLLER_QUEUE,
            Exchange(CONTROLLER_QUEUE),
            routing_key=CONTROLLER_QUEUE,
            no_declare=True,
        ),
        Queue(
            LIVENESS_QUEUE, Exchange(LIVENESS_QUEUE), routing_key=LIVENESS_QUEUE, no_declare=True
        ),
    ),
    # No remote control (pidbox: `celery inspect`/`control` reach no worker) and no
    # events; the broker's ACL grants no Pub/Sub channel either.
    "worker_enable_remote_control": False,
    "worker_send_task_events": False,
    "task_send_sent_event": False,
    # ... so a consumer whose every slot is busy would no longer notice a restarted
    # Redis: this one pings the broker on a connection of its own (core/broker_watch.py).
    "worker_consumer": "ciaoweb.core.broker_watch:Consumer",
}
