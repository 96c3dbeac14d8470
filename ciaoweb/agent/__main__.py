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
import shutil
import sys
import threading
from pathlib import Path

from .config import DRIVERS, ENV_VAR, AgentConfig, ConfigError


def parse_args(argv: list[str]) -> AgentConfig:
    """The configuration from the flags over the file over REDIS_URL; ConfigError names
    every bad key."""
    parser = argparse.ArgumentParser(prog="python -m ciaoweb.agent", description=__doc__)
    parser.add_argument("--node", required=True, help="this host's name (its queue is node.<name>)")
    parser.add_argument("--driver", choices=DRIVERS, default=None)
    parser.add_argument("--sim-name", default=None, help="simulator to drive (driver sim)")
    parser.add_argument(
        "--config",
        help="YAML file: physical_device_mappings, exclude_devices... "
        "(every key: deploy/agent.example.yaml)",
    )
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
        help="seconds between heartbeats (a key in the broker's Redis the controller reads)",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=None,
        help="seconds between re-registrations (each triggers a reconcile)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve the agent's Prometheus metrics on this port (default: off)",
    )
    parser.add_argument("--metrics-address", default=None, help="address for --metrics-port")
    args = vars(parser.parse_args(argv))
    config_file = args.pop("config")
    overrides = {k: v for k, v in args.items() if v is not None}
    # REDIS_URL is the broker unless the file or --broker names one.
    redis_url = os.environ.get("REDIS_URL")
    environment = {"broker_url": ("REDIS_URL", redis_url)} if redis_url is not None else {}
    if config_file:
        return AgentConfig.from_file(config_file, environment=environment, **overrides)
    return AgentConfig.load({}, environment=environment, overrides=overrides)


def prepare_metrics_dir(state_dir: str) -> str:
    """An empty directory for the agent processes' samples (prometheus_client's
    multiprocess mode), named in the environment. Called before anything imports
    prometheus_client, which picks its mode at import; the pool's children inherit it."""
    path = Path(state_dir) / "metrics"
    shutil.rmtree(path, ignore_errors=True)  # the last run's: counters start at 0 again
    path.mkdir(mode=0o700, parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:  # one line per problem, naming its key: no traceback
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
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
    if config.metrics_port:
        prepare_metrics_dir(config.state_dir)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {config.node} %(name)s: %(message)s"
    )

    # Imported only now: the app and wiring read the config from the environment.
    from .app import app
    from .background import start_background

    if config.metrics_port:
        from .metrics import serve

        try:
            serve(config.node, config.driver, config.metrics_port, config.metrics_address)
        except OSError as exc:  # the port is taken, the address is not this host's
            where = f"{config.metrics_address}:{config.metrics_port}"
            print(f"error: cannot serve metrics on {where}: {exc}", file=sys.stderr)
            return 2
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
