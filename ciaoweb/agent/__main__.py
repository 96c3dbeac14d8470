"""Start a node agent: `python -m ciaoweb.agent --node NAME --driver sim|sriov`.

The main process registers the node's inventory (which makes the controller send a
reconcile), then keeps two background threads — heartbeat and lease-event forwarding —
while a Celery worker serves the node's own queue with a prefork pool (netns switching
in pyroute2 is per thread, so work runs in processes).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from .config import ENV_VAR, AgentConfig


def parse_args(argv: list[str]) -> AgentConfig:
    parser = argparse.ArgumentParser(prog="python -m ciaoweb.agent", description=__doc__)
    parser.add_argument("--node", required=True, help="this host's name (its queue is node.<name>)")
    parser.add_argument("--driver", choices=["sim", "sriov"], default=None)
    parser.add_argument("--sim-name", default=None, help="simulator to drive (driver sim)")
    parser.add_argument("--config", help="YAML file: physical_device_mappings, exclude_devices...")
    parser.add_argument("--broker", dest="broker_url", default=None)
    parser.add_argument(
        "--credential-file",
        default=None,
        help="the host's credential from its enrolment (POST /api/v1/hosts/), a 0600 JSON file",
    )
    parser.add_argument("--state-dir", default=None)
    parser.add_argument("--network-node", action="store_true", default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=None,
        help="seconds between heartbeats to the controller",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=None,
        help="seconds between re-registrations (each triggers a reconcile)",
    )
    args = vars(parser.parse_args(argv))
    config_file = args.pop("config")
    overrides = {k: v for k, v in args.items() if v is not None}
    overrides.setdefault("broker_url", os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    if config_file:
        return AgentConfig.from_file(config_file, **overrides)
    return AgentConfig(**overrides)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        credential = config.credential()
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot read the credential file: {exc}", file=sys.stderr)
        return 2
    if credential is None:
        print(
            "error: an agent needs --credential-file: enrol the host first "
            "(POST /api/v1/hosts/ as an admin returns its credential once)",
            file=sys.stderr,
        )
        return 2
    os.environ[ENV_VAR] = config.to_env()
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {config.node} %(name)s: %(message)s"
    )

    # Imported only now: the app and wiring read the config from the environment.
    from .app import app
    from .background import start_background

    stop = threading.Event()
    start_background(config, stop)
    worker_args = [
        "worker",
        "--queues",
        f"node.{config.node}",
        "--hostname",
        f"agent@{config.node}",
        "--concurrency",
        str(config.concurrency),
        "--pool",
        "prefork",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    try:
        app.worker_main(worker_args)
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
