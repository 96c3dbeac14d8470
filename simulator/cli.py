"""`python -m simulator up|status|down|clean`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from typing import Any

from .clean import clean
from .core import Simulator
from .errors import SimError
from .topology import Topology


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulator",
        description="SR-IOV hosts, fabric and underlay DHCP in network namespaces.",
    )
    p.add_argument("--dir", help="base state dir (default $CIAO_SIM_DIR or <repo>/var/sim)")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="build a simulator and exit (the datapath stays)")
    up.add_argument("--name", default="sim")
    up.add_argument("--topology", metavar="FILE", help="YAML/JSON topology (replaces flags)")
    up.add_argument("--hosts", type=int, default=2)
    up.add_argument("--pfs", type=int, default=1, help="PFs per host")
    up.add_argument("--vfs", type=int, default=8, help="sriov_totalvfs per PF")
    up.add_argument(
        "--numvfs",
        type=int,
        default=None,
        help="VFs created at boot per PF (default: all of --vfs)",
    )
    up.add_argument(
        "--physnet",
        action="append",
        dest="physnets",
        metavar="NAME",
        help="repeatable; PF i goes to physnet i mod len (default physnet1)",
    )
    up.add_argument(
        "--network-node", action="store_true", help="add a host 'netnode' marked network_node"
    )
    up.add_argument(
        "--underlay",
        action="append",
        default=[],
        metavar="PHYSNET:VLAN:CIDR",
        help="repeatable; underlay DHCP server on that L2 domain",
    )
    up.add_argument("-q", "--quiet", action="store_true")

    st = sub.add_parser("status", help="print the topology, namespaces, VFs")
    st.add_argument("--name", default="sim")
    st.add_argument("--json", action="store_true")

    down = sub.add_parser("down", help="tear a simulator down")
    down.add_argument("--name", default="sim")

    cl = sub.add_parser("clean", help="remove leftovers even after a crash")
    cl.add_argument(
        "--name",
        default=None,
        help="only this simulator's (default: every ciao* namespace and process)",
    )
    return p


def _progress(quiet: bool):
    t0 = time.monotonic()

    def say(msg: str) -> None:
        if not quiet:
            print(f"[{time.monotonic() - t0:6.2f}s] {msg}", file=sys.stderr, flush=True)

    return say


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds `up` through its teardown


def cmd_up(args: argparse.Namespace) -> int:
    if args.topology:
        topo = Topology.from_file(args.topology)
    else:
        topo = Topology.from_flags(
            hosts=args.hosts,
            pfs=args.pfs,
            vfs=args.vfs,
            physnets=args.physnets,
            network_node=args.network_node,
            underlays=args.underlay,
            numvfs=args.numvfs,
        )
    signal.signal(signal.SIGTERM, _on_sigterm)
    sim = Simulator.up(topo, name=args.name, progress=_progress(args.quiet), base_dir=args.dir)
    print(f"simulator {sim.name} up; state in {sim.state_dir}")
    return 0


def format_status(s: dict) -> str:
    out = [
        f"simulator {s['name']} ({s['status']}), state {s['state_dir']}",
        f"fabric netns {s['fabric']['netns']}: bridges (physnet idx:vlan) "
        f"{', '.join(s['fabric']['bridges'])}",
    ]
    for host, h in s["hosts"].items():
        flags = (" network-node" if h["network_node"] else "") + (" DOWN" if h["down"] else "")
        out.append(f"host {host}{flags}: netns {h['netns']} mgmt {h['mgmt_ip']} sys {h['sysfs']}")
        for pf, p in h["pfs"].items():
            out.append(
                f"  pf {pf} {p['pci']} physnet {p['physnet']} vfs {p['numvfs']}/{p['totalvfs']} "
                f"vlans {p['vlans']}" + (f" faults {p['faults']}" if p["faults"] else "")
            )
            for k, v in p["vfs"].items():
                where = f" in {v['netns']} as {v['ifname']}" if v["netns"] else ""
                out.append(
                    f"    vf {k} {v['pci']} {v['netdev']} mac {v['mac']} vlan {v['vlan']} "
                    f"spoofchk {'on' if v['spoofchk'] else 'off'} "
                    f"trust {'on' if v['trust'] else 'off'} link {v['link_state']} "
                    f"rate {v['max_tx_rate']}{where}"
                )
    for u in s["underlays"].values():
        out.append(
            f"underlay dhcp {u['physnet']}:{u['vlan']} {u['cidr']} server {u['server_ip']} "
            f"netns {u['netns']}"
        )
    for i in s["instances"]:
        out.append(
            f"instance {i['name']} ({i['kind']}) on {i['host']}: netns {i['netns']}"
            + (f" guest pid {i['guest_pid']}" if i["guest_pid"] else "")
        )
    return "\n".join(out)


def cmd_status(args: argparse.Namespace) -> int:
    s = Simulator.load(args.name, args.dir).status()
    print(json.dumps(s, indent=2, sort_keys=True) if args.json else format_status(s))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    Simulator(args.name, args.dir).down(progress=_progress(False))
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    removed = clean(args.name, args.dir, log=_progress(False))
    print(
        f"removed {len(removed['netns'])} namespaces, {len(removed['pidfiles'])} pid files, "
        f"{len(removed['links'])} links, {len(removed['dirs'])} state dirs"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"up": cmd_up, "status": cmd_status, "down": cmd_down, "clean": cmd_clean}
    try:
        return handler[args.command](args)
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
