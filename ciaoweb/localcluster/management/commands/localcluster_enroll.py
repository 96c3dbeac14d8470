"""`manage.py localcluster_enroll --json [--network-node NAME ...] NAME ...`: enrol the
hosts of a local cluster and print `{"<host>": "<secret>", ...}` for its launcher, which
writes each agent's credential file (the same as `POST /api/v1/hosts/` for an admin)."""

import json

from django.core.management.base import BaseCommand

from ciaoweb.inventory.services import enrol_host


class Command(BaseCommand):
    help = "Enrol hosts and print their new credentials (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="+", help="host names")
        parser.add_argument(
            "--network-node", action="append", default=[], help="a host that is a network node"
        )
        parser.add_argument("--json", action="store_true", help="print JSON (the only format)")

    def handle(self, *args, names: list[str], network_node: list[str], **options) -> None:
        unknown = set(network_node) - set(names)
        if unknown:
            self.stderr.write(
                f"--network-node names hosts not listed: {', '.join(sorted(unknown))}"
            )
            raise SystemExit(2)
        secrets = {}
        for name in names:
            _, secrets[name] = enrol_host(name, is_network_node=name in network_node)
        self.stdout.write(json.dumps(secrets))
