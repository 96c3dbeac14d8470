"""The agent main process's background duties: register (which triggers a reconcile),
heartbeat, and forward lease events from the node's dnsmasq servers as they happen."""

from __future__ import annotations

import logging
import threading
import time

from ciaoweb import taskrouting as names

from .config import AgentConfig

log = logging.getLogger(__name__)


def start_background(config: AgentConfig, stop: threading.Event) -> None:
    from .tasks import report
    from .wiring import dhcp_servers, node_agent

    def register() -> None:
        report(
            names.REGISTER_INVENTORY,
            node=config.node,
            inventory=node_agent().inventory(config.network_node),
            owners=node_agent().owners(),
        )

    def heartbeat_loop() -> None:
        next_register = time.monotonic() + config.reconcile_interval
        while not stop.wait(config.heartbeat_interval):
            try:
                report(names.HEARTBEAT, node=config.node)
                if time.monotonic() >= next_register:
                    register()
                    next_register = time.monotonic() + config.reconcile_interval
            except Exception:  # a broker blip must not kill the loop
                log.exception("heartbeat failed")

    def lease_loop() -> None:
        for event in dhcp_servers().lease_events(stop):
            try:
                report(names.LEASE_EVENT, node=config.node, event=event)
            except Exception:
                log.exception("lease event not forwarded: %s", event)

    register()
    report(names.HEARTBEAT, node=config.node)
    for target in (heartbeat_loop, lease_loop):
        threading.Thread(target=target, name=target.__name__, daemon=True).start()
