"""Node-queue Celery tasks: thin wrappers that apply a spec and report the result.

Results go back as tasks on the controller queue (by name: the agent never imports the
controller). Transient driver errors are retried with backoff; everything else becomes
a reported error with its reason.
"""

from __future__ import annotations

import logging
from typing import Any

from ciaoweb import taskrouting as names

from .app import app
from .drivers.base import TransientError
from .metrics import time_tasks
from .node import InstanceResult
from .wiring import dhcp_servers, node_agent

log = logging.getLogger(__name__)

# ciao_agent_task_seconds{task, outcome} for every task below (ciaoweb.agent.metrics).
time_tasks(names.AGENT_PREFIX)

RETRY = {
    "autoretry_for": (TransientError,),
    "retry_backoff": 0.2,
    "retry_backoff_max": 5,
    "retry_jitter": True,
    "max_retries": 6,
}


def report(task_name: str, **kwargs: Any) -> None:
    app.send_task(task_name, kwargs=kwargs)


@app.task(name=names.ENSURE_INSTANCE, bind=True, max_retries=6)
def ensure_instance(self, node: str, spec: dict) -> None:
    agent = node_agent()
    if not agent.admit(spec):
        log.info(
            "stale spec for %s (generation %s) skipped", spec["instance_id"], spec["generation"]
        )
        return
    try:
        result = agent.ensure_instance(spec)
    except TransientError as exc:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(0.2 * 2**self.request.retries, 5)) from exc
        result = InstanceResult(
            spec["instance_id"],
            spec["generation"],
            node,
            ok=False,
            error=f"gave up after {self.max_retries} retries: {exc}",
        )
    report(
        names.INSTANCE_APPLIED, node=node, result=result.to_dict(), context=spec.get("context", {})
    )


@app.task(name=names.RELEASE_INSTANCE, **RETRY)
def release_instance(node: str, spec: dict) -> None:
    agent = node_agent()
    agent.admit(spec)  # a release outranks any older plug still in flight
    result = agent.release_instance(spec)
    report(
        names.INSTANCE_RELEASED, node=node, result=result.to_dict(), context=spec.get("context", {})
    )


@app.task(name=names.UNPLUG_INTERFACES, **RETRY)
def unplug_interfaces(node: str, spec: dict) -> None:
    """Hot-unplug (detach, or an attach rolled back): the namespace stays."""
    agent = node_agent()
    agent.admit(spec)
    result = agent.unplug_interfaces(spec)
    report(
        names.INSTANCE_RELEASED, node=node, result=result.to_dict(), context=spec.get("context", {})
    )


@app.task(name=names.ENSURE_DHCP_SERVER, **RETRY)
def ensure_dhcp_server(node: str, spec: dict) -> None:
    outcome = dhcp_servers().ensure(spec)
    report(
        names.DHCP_SERVER_APPLIED,
        node=node,
        network_id=spec["network_id"],
        context=spec.get("context", {}),
        **outcome,
    )


@app.task(name=names.REMOVE_DHCP_SERVER, **RETRY)
def remove_dhcp_server(node: str, spec: dict) -> None:
    dhcp_servers().remove(spec)
    report(
        names.DHCP_SERVER_APPLIED,
        node=node,
        network_id=spec["network_id"],
        ok=True,
        error="",
        netns="",
        restarted=False,
        removed=True,
    )


@app.task(name=names.RECONCILE, **RETRY)
def reconcile(node: str, desired: dict) -> None:
    corrections = node_agent().reconcile(desired)
    corrections += dhcp_servers().reconcile(
        desired.get("dhcp_servers", []), desired.get("registered_at")
    )
    for correction in corrections:
        report(names.AGENT_EVENT, node=node, event=correction)
