"""Builds the agent's parts from its configuration, once per process.

Celery's prefork pool forks after the main process has used them, so everything is
rebuilt in a child (sockets and locks must not be shared across a fork).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .config import AgentConfig
from .dhcp.client import obtain_lease
from .generations import GenerationLog
from .node import NodeAgent
from .overlay import Overlay
from .runtime import NetnsRuntime, SimRuntime


@functools.cache
def _parts(pid: int) -> tuple[NodeAgent, object]:
    from .cnci import DhcpServers

    config = AgentConfig.from_env()
    if config.driver == "sim":
        from simulator import Simulator

        from .drivers.sim import sim_driver

        sim = Simulator.load(config.sim_name)
        driver = sim_driver(
            config.sim_name,
            config.node,
            state_dir=config.state_dir,
            physnets=config.physical_device_mappings or None,
            exclude=config.exclude_devices or None,
            sim=sim,
        )
        runtime = SimRuntime(sim, config.node)
        tunnel_ip = sim.host_mgmt_ip(config.node)
    else:
        from .drivers.sriov import SriovDriver

        driver = SriovDriver(
            node=config.node,
            state_dir=config.state_dir,
            physnets=config.physical_device_mappings or None,
            exclude=config.exclude_devices or None,
        )
        guests = Path(config.state_dir) / "vm-guests" if config.vm_guests else None
        if guests is not None:
            guests.mkdir(parents=True, exist_ok=True)
        runtime = NetnsRuntime(vm_guests=guests)
        tunnel_ip = config.overlay_local_ip or None
    hook_dir = Path(config.state_dir) / "hooks"
    hook_dir.mkdir(parents=True, exist_ok=True)

    def dhcp_client(netns: str, ifname: str, hostname: str | None = None) -> str:
        return obtain_lease(
            netns,
            ifname,
            hook_dir=hook_dir,
            hostname=hostname,
            tries=config.dhcp_tries,
            timeout=max(30.0, 3.0 * config.dhcp_tries),
        ).ip

    overlay = Overlay(runtime.host_netns, tunnel_ip)
    generations = GenerationLog(config.state_dir)
    agent = NodeAgent(
        config.node, driver, runtime, dhcp_client, overlay, generations, config.state_dir
    )
    return agent, DhcpServers(config.state_dir, driver, runtime, overlay)


def node_agent() -> NodeAgent:
    return _parts(os.getpid())[0]


def dhcp_servers():
    return _parts(os.getpid())[1]
