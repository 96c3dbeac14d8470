"""The node agent's own metrics (Prometheus): how long its tasks and plumbing steps take,
and which errors the kernel answers its VF and link requests with.

The agent serves them itself, on an opt-in port (`metrics_port` in its config, off by
default), instead of carrying them in its heartbeat to the controller's `/metrics`:

- they are there when the controller or the broker is not, which is when an operator
  looks at a node;
- histograms keep their buckets, scraped at Prometheus' pace, instead of summaries sent
  every few seconds through the broker and applied by the controller's worker;
- the controller does not re-publish numbers only the agent vouches for.

Prometheus scrapes each agent as it scrapes node_exporter on the same host (its target
names the host). docs/operations.md lists the families.

Celery's prefork pool runs the work in child processes. With a port set,
`ciaoweb.agent.__main__` points PROMETHEUS_MULTIPROC_DIR at a fresh directory under the
agent's state dir before anything imports prometheus_client; every process then writes
its samples there and the main process serves their sum (prometheus_client's
multiprocess mode). Without a port the samples stay in each process's memory
(`REGISTRY`, which the tests read).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Iterator

from celery import signals
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from ciaoweb.version import version

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
OK, ERROR, RETRY = "ok", "error", "retry"

REGISTRY = CollectorRegistry(auto_describe=True)

# A netns costs ~3 ms, a VF move ~22 ms, DHCP ~100 ms; a guest under TCG, many seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

TASK_SECONDS = Histogram(
    "ciao_agent_task_seconds",
    "Node tasks (agent.ensure_instance, agent.reconcile, ...) by outcome: ok, error, retry",
    ["task", "outcome"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "ciao_agent_step_seconds",
    "Plumbing steps inside the node tasks (netns_create, vf_plug, overlay_plug, "
    "dhcp_client, vf_unplug, overlay_unplug, netns_delete) by outcome: ok, error",
    ["step", "outcome"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
NETLINK_ERRORS = Counter(
    "ciao_agent_netlink_errors",
    "Errors the kernel (or the simulator) answered VF and link requests with, by errno",
    ["error"],
    registry=REGISTRY,
)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Time one plumbing step; an exception leaving it counts as an error."""
    start = time.perf_counter()
    outcome = ERROR
    try:
        yield
        outcome = OK
    finally:
        STEP_SECONDS.labels(name, outcome).observe(time.perf_counter() - start)


def netlink_error(code: int | None) -> None:
    """Count one refused VF/link request by its errno (`EBUSY`, `ENODEV`, ...)."""
    name = errno.errorcode.get(abs(code), str(abs(code))) if code else "unknown"
    NETLINK_ERRORS.labels(name).inc()


# --- task timings, from Celery's signals (one place for every node task) -----------------

# Celery's outcome states -> ours (RETRY covers autoretry_for and self.retry alike).
_OUTCOMES = {"SUCCESS": OK, "RETRY": RETRY}
_started: dict[str, float] = {}
_started_lock = threading.Lock()


def time_tasks(prefix: str) -> None:
    """Observe every task whose name starts with `prefix` (the node tasks), in whatever
    process runs it; idempotent."""

    def started(task_id=None, task=None, **_) -> None:
        if task is not None and task.name.startswith(prefix):
            with _started_lock:
                _started[task_id] = time.perf_counter()

    def finished(task_id=None, task=None, state=None, **_) -> None:
        with _started_lock:
            start = _started.pop(task_id, None)
        if start is not None:
            outcome = _OUTCOMES.get(state or "", ERROR)
            TASK_SECONDS.labels(task.name, outcome).observe(time.perf_counter() - start)

    signals.task_prerun.connect(started, weak=False, dispatch_uid="ciao-agent-task-started")
    signals.task_postrun.connect(finished, weak=False, dispatch_uid="ciao-agent-task-finished")


# --- the endpoint --------------------------------------------------------------------------


class AgentInfo:
    """`ciao_agent_info{node, version, driver} 1`: which agent answers on this port."""

    def __init__(self, node: str, driver: str) -> None:
        self.node, self.driver = node, driver

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "ciao_agent_info",
            "The agent serving these metrics: its host, ciaoweb version and VF driver",
            labels=["node", "version", "driver"],
        )
        info.add_metric([self.node, version(), self.driver], 1)
        yield info


def serve(node: str, driver: str, port: int, address: str) -> int:
    """Serve the samples of every agent process (multiprocess mode) on address:port in a
    daemon thread; returns the port bound (0 picks a free one)."""
    from prometheus_client import values

    path = os.environ.get(MULTIPROC_ENV)
    if not path or values.ValueClass is values.MutexValue:
        # The pool's children would count only in their own memory: nothing served.
        raise RuntimeError(
            f"{MULTIPROC_ENV} must be set before prometheus_client is imported "
            "(ciaoweb.agent.__main__ does it when metrics_port is set)"
        )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)
    registry.register(AgentInfo(node, driver))
    server, _thread = start_http_server(port, addr=address, registry=registry)
    return server.server_port
