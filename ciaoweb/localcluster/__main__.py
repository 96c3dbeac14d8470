"""`python -m ciaoweb.localcluster clean [--name NAME]`: what `make clean` runs.

Ends the processes of crashed local clusters (the demo's included) by their pid files,
their agents' dnsmasq servers, then runs the simulator clean. No Django: it must work
whatever state the project's database and settings are in.
"""

from __future__ import annotations

import argparse
import sys

from simulator.errors import SimError

from .processes import clean_clusters, runs_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ciaoweb.localcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    clean = sub.add_parser("clean", help="end crashed local clusters and their simulators")
    clean.add_argument(
        "--name",
        default=None,
        help="only this cluster and its simulator (default: every cluster with a run dir "
        "under the var dir, then everything with the ciao prefix)",
    )
    args = parser.parse_args(argv)
    try:
        done = clean_clusters(args.name)
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"ended the processes of {len(done['clusters'])} cluster(s) under {runs_dir()} "
        f"({', '.join(done['clusters']) or 'none'}); removed {len(done['netns'])} namespaces, "
        f"{len(done['pidfiles'])} simulator pid files, {len(done['links'])} links, "
        f"{len(done['dirs'])} state dirs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
