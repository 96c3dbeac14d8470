"""`make demo`: a simulated cluster with every process running, seeded, until Ctrl-C."""

import os
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from ciaoweb.localcluster.cluster import ClusterConfig, LocalCluster
from ciaoweb.localcluster.seed import seed_demo


class Command(BaseCommand):
    help = "Run a demo cluster on the simulator (Ctrl-C tears everything down)."

    def add_arguments(self, parser):
        parser.add_argument("--no-seed", action="store_true", help="start empty")

    def handle(self, *args, no_seed: bool = False, **options) -> None:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        info_path = Path(settings.VAR_DIR) / "demo.json"
        config = ClusterConfig(
            name="demo",
            port=int(os.environ.get("CIAO_PORT", "8000")),
            database_url=os.environ.get("DATABASE_URL", ""),
            redis_url=os.environ.get("CIAO_DEMO_REDIS_URL", "redis://127.0.0.1:6379/3"),
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
            while not stop.wait(1.0):
                cluster.check_alive()
        finally:
            self.stdout.write("tearing down")
            info_path.unlink(missing_ok=True)
            cluster.stop()
            self.stdout.write("stopped: no namespace, link or process left")
