"""The node agent's own metrics (ciaoweb.agent.metrics): step timings, netlink errors,
task timings, and the endpoint that sums the samples of every agent process."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pyroute2 import NetlinkError

from ciaoweb.agent.drivers.base import InterfaceNotFound, TransientError
from ciaoweb.agent.drivers.netlink import _raise_domain
from ciaoweb.agent.metrics import REGISTRY, serve
from ciaoweb.agent.node import NodeAgent
from ciaoweb.version import version

REPO = Path(__file__).resolve().parents[2]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Runtime:
    """An instance runtime whose namespaces are names only; deleting one fails."""

    host_netns = None

    def create(self, name: str, kind: str) -> str:
        return f"ns-{name}"

    def delete(self, name: str) -> None:
        raise RuntimeError("namespace busy")


def test_steps_are_timed_with_their_outcome():
    agent = NodeAgent("node1", driver=None, runtime=Runtime(), dhcp_client=None)
    spec = {"instance_id": "i-1", "generation": 1, "kind": "container", "attachments": []}
    created = {"step": "netns_create", "outcome": "ok"}
    deleted = {"step": "netns_delete", "outcome": "error"}
    before = (
        sample("ciao_agent_step_seconds_count", **created),
        sample("ciao_agent_step_seconds_count", **deleted),
    )
    assert agent.ensure_instance(spec).ok
    assert not agent.release_instance(spec).ok
    after = (
        sample("ciao_agent_step_seconds_count", **created),
        sample("ciao_agent_step_seconds_count", **deleted),
    )
    assert after == (before[0] + 1, before[1] + 1)


def test_netlink_errors_are_counted_by_errno():
    before = sample("ciao_agent_netlink_errors_total", error="EBUSY")
    with pytest.raises(TransientError):
        _raise_domain(NetlinkError(errno.EBUSY, "busy"), "pf0 vf 1 set mac", mac_write=True)
    with pytest.raises(InterfaceNotFound):
        _raise_domain(NetlinkError(errno.ENODEV, "gone"), "pf0 vf 1 get")
    assert sample("ciao_agent_netlink_errors_total", error="EBUSY") == before + 1
    assert sample("ciao_agent_netlink_errors_total", error="ENODEV") >= 1


def test_no_endpoint_without_multiprocess_mode():
    # This process imported prometheus_client without PROMETHEUS_MULTIPROC_DIR: the pool's
    # children would count in their own memory only, so the agent refuses to serve.
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        serve("node1", "sim", 0, "127.0.0.1")


# An agent in miniature: the main process prepares the directory (as __main__ does),
# two forked "pool children" run node tasks, the main process serves their sum.
AGENT = textwrap.dedent(
    """
    import os, sys
    from ciaoweb.agent.__main__ import prepare_metrics_dir
    prepare_metrics_dir(sys.argv[1])
    from ciaoweb.agent import tasks
    from ciaoweb.agent.metrics import netlink_error, serve

    class Agent:
        def reconcile(self, desired):
            if desired.get("fail"):
                raise RuntimeError("boom")
            return []

    class Servers:
        def reconcile(self, servers, registered_at=None):
            return []

    tasks.node_agent, tasks.dhcp_servers = Agent, Servers
    tasks.report = lambda *args, **kwargs: None
    for desired in ({}, {"fail": True}):
        pid = os.fork()
        if pid == 0:
            tasks.reconcile.apply(kwargs={"node": "node1", "desired": desired})
            netlink_error(16)
            os._exit(0)
        os.waitpid(pid, 0)
    print(serve("node1", "sim", 0, "127.0.0.1"), flush=True)
    sys.stdin.read()  # serve until the test closes our stdin
    """
)


def test_the_endpoint_sums_every_agent_process(tmp_path):
    agent = subprocess.Popen(
        [sys.executable, "-c", AGENT, str(tmp_path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = agent.stdout.readline().strip()
        assert port.isdigit(), agent.stderr.read() if agent.poll() is not None else port
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        agent.stdin.close()
        agent.wait(timeout=10)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    task = "agent.reconcile"
    ok = (("outcome", "ok"), ("task", task))
    failed = (("outcome", "error"), ("task", task))
    assert samples[("ciao_agent_task_seconds_count", ok)] == 1
    assert samples[("ciao_agent_task_seconds_count", failed)] == 1
    assert samples[("ciao_agent_netlink_errors_total", (("error", "EBUSY"),))] == 2
    info = (("driver", "sim"), ("node", "node1"), ("version", version()))
    assert samples[("ciao_agent_info", info)] == 1
