"""`make demo`: a cluster with every process running, seeded, until Ctrl-C.

`CIAO_NODES=qemu make demo`: the same, with QEMU guests (emulated igb SR-IOV NICs, the
real igb/igbvf drivers) as its hosts instead of the simulator's."""

import os
import signal
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ciaoweb.localcluster.cluster import ClusterConfig, LocalCluster, demo_topology
from ciaoweb.localcluster.seed import seed_demo


def demo_database_url() -> str:
    """A fresh database every run, like the simulated hardware it describes:
    CIAO_DEMO_DATABASE_URL if set (it is used as is), else a new SQLite file under var/."""
    if url := os.environ.get("CIAO_DEMO_DATABASE_URL"):
        return url
    path = Path(settings.VAR_DIR) / "demo.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def qemu_settings() -> dict:
    """Guests run under TCG here: agents are slower to start and to answer."""
    from ciaoweb.localcluster.qemu.nodes import qemu_topology

    return {
        "nodes": "qemu",
        "topology": qemu_topology(),
        "heartbeat_timeout": 30.0,
        "operation_step_timeout": 60.0,
    }


class Command(BaseCommand):
    help = "Run a demo cluster on the simulator (Ctrl-C tears everything down)."

    def add_arguments(self, parser):
        parser.add_argument("--no-seed", action="store_true", help="start empty")

    def handle(self, *args, no_seed: bool = False, **options) -> None:
        stopping = threading.Event()

        def interrupt(*_) -> None:
            """The first Ctrl-C/SIGTERM interrupts whatever runs; later ones are ignored
            so the teardown it triggers can finish."""
            if not stopping.is_set():
                stopping.set()
                raise KeyboardInterrupt

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, interrupt)
        info_path = Path(settings.VAR_DIR) / "demo.json"
        nodes = os.environ.get("CIAO_NODES", "sim")
        if nodes not in ("sim", "qemu"):
            raise CommandError(f"CIAO_NODES must be sim or qemu, not {nodes!r}")
        config = ClusterConfig(
            # Another name runs a demo beside a developer's own (the crash test does).
            name=os.environ.get("CIAO_DEMO_NAME", "demo"),
            port=int(os.environ.get("CIAO_PORT", "8000")),
            database_url=demo_database_url(),
            sign_in_throttle=True,  # as deployed (the test clusters turn it off)
            # The broker is the cluster's own Redis with ACL users (a free port; its URL,
            # without credentials, is var/demo.json's "broker").
            **(qemu_settings() if nodes == "qemu" else {"topology": demo_topology()}),
        )
        cluster = LocalCluster(config, progress=self.stdout.write)
        try:
            cluster.start()
            if not no_seed:
                self.stdout.write("seeding the demo tenant")
                seeded = seed_demo(cluster.api, progress=self.stdout.write)
            cluster.write_info(info_path)
            self.stdout.write(self.style.SUCCESS(f"\nciaoweb is running at {cluster.url}/"))
            self.stdout.write(f"  admin:  {cluster.admin_username} / {cluster.admin_password}")
            if not no_seed:
                member = seeded["member"]
                self.stdout.write(
                    f"  tenant demo member: {member['username']} / {member['password']}"
                )
            self.stdout.write(f"  API docs: {cluster.url}/api/v1/docs/   (Ctrl-C to stop)")
            while True:
                time.sleep(1.0)
                cluster.check_alive()
        except KeyboardInterrupt:
            pass
        finally:
            self.stdout.write("tearing down")
            info_path.unlink(missing_ok=True)
            cluster.stop()
            self.stdout.write("stopped: no namespace, link or process left")
