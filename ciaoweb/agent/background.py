"""The agent main process's background duties: register (which triggers a reconcile),
heartbeat (a liveness key in the broker's Redis, ciaoweb.core.liveness), and forward
lease events from the node's dnsmasq servers as they happen."""

from __future__ import annotations

import logging
import threading
import time

from ciaoweb import taskrouting as names
from ciaoweb.core import liveness

from .config import AgentConfig

log = logging.getLogger(__name__)


def start_background(config: AgentConfig, stop: threading.Event) -> None:
    from .app import app
    from .tasks import report
    from .wiring import dhcp_servers, node_agent

    # Whether this process may have lost node tasks since it last registered: at its start
    # (a killed predecessor's), and after the broker was out of reach (a restarted Redis
    # keeps no queues). Only then does the controller send every active step again.
    may_have_lost = threading.Event()
    may_have_lost.set()

    def register() -> None:
        resume = may_have_lost.is_set()
        report(
            names.REGISTER_INVENTORY,
            node=config.node,
            inventory=node_agent().inventory(config.network_node),
            owners=node_agent().owners(),
            # Comes back with the plan: what was set up after it is newer than the plan.
            registered_at=time.time(),
            resume=resume,
        )
        if resume:
            may_have_lost.clear()

    def heartbeat_loop() -> None:
        next_register = time.monotonic() + config.reconcile_interval
        while True:
            try:
                liveness.beat(beats, config.node, ttl)
            except Exception as exc:  # a broker blip must not kill the loop
                log.warning("heartbeat failed: %s", exc)
                may_have_lost.set()
            if time.monotonic() >= next_register:
                try:
                    register()
                except Exception:
                    log.exception("re-registration failed")
                next_register = time.monotonic() + config.reconcile_interval
            if stop.wait(config.heartbeat_interval):
                return

    def lease_loop() -> None:
        # Nothing may end this thread but `stop`: when it died (a server directory removed
        # under it), the node's lease events stopped until the agent restarted.
        while not stop.is_set():
            try:
                for event in dhcp_servers().lease_events(stop):
                    try:
                        report(names.LEASE_EVENT, node=config.node, event=event)
                    except Exception:
                        log.exception("lease event not forwarded: %s", event)
            except Exception:
                log.exception("reading lease events failed: starting over")
                stop.wait(1.0)

    # A slow answer (a busy emulated node) delays the next beat, it does not drop it.
    beats = liveness.redis_client(
        app.conf.broker_url, timeout=max(5.0, 3 * config.heartbeat_interval)
    )
    # The key outlives many missed beats: the controller reads from it how long the host
    # has been silent (ciaoweb.core.liveness), and its own timeout decides.
    ttl = max(30.0, 10 * config.heartbeat_interval)
    register()
    for target in (heartbeat_loop, lease_loop):
        threading.Thread(target=target, name=target.__name__, daemon=True).start()
