"""The raw launch floor on the real kernel, run *inside* a QEMU guest with igb PFs:
`python -m bench.realnic_floor OUT.json --pf pf1 --vf 6 --vlan V --count N`.

The kernel steps of one container launch with nothing of ours in the way (no broker,
controller, agent or state file): program the VF's VLAN and MAC through the PF, bind
igbvf (driver_override), wait for its netdev, a namespace, the netdev moved in as eth1
and up, then busybox udhcpc (the agent's own client) until bound against the network's
dnsmasq on the network node, over the emulated wire. Netlink by pyroute2 like the
driver, sysfs written directly. Each round is undone afterwards (outside the timing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _write(path: str, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _netdev(pci: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            names = os.listdir(f"/sys/bus/pci/devices/{pci}/net")
        except FileNotFoundError:
            names = []
        if names:
            return names[0]
        time.sleep(0.005)
    raise RuntimeError(f"VF {pci}: no netdev after bind")


def one_launch(ipr, pf: str, vf: int, vlan: int, mac: str, hook_dir: Path) -> dict[str, float]:
    from pyroute2 import netns as pyroute_netns

    from ciaoweb.agent.dhcp.client import obtain_lease

    pci = os.path.basename(os.path.realpath(f"/sys/class/net/{pf}/device/virtfn{vf}"))
    ns = f"ciao-floor{vf}"
    pf_index = ipr.link_lookup(ifname=pf)[0]
    marks = {"start": time.monotonic()}
    ipr.link("set", index=pf_index, vf={"vf": vf, "vlan": vlan})
    ipr.link("set", index=pf_index, vf={"vf": vf, "mac": mac})
    marks["program"] = time.monotonic()
    _write(f"/sys/bus/pci/devices/{pci}/driver_override", "igbvf")
    _write("/sys/bus/pci/drivers/igbvf/bind", pci)
    netdev = _netdev(pci)
    marks["bind"] = time.monotonic()
    pyroute_netns.create(ns)
    idx = ipr.link_lookup(ifname=netdev)[0]
    ipr.link("set", index=idx, ifname="ciaofloor")
    ipr.link("set", index=idx, net_ns_fd=ns)
    from ciaoweb.agent.drivers.netlink import netns_socket

    inside = netns_socket(ns)
    try:
        idx = inside.link_lookup(ifname="ciaofloor")[0]
        inside.link("set", index=idx, ifname="eth1")
        inside.link("set", index=idx, state="up")
    finally:
        inside.close()
    marks["plug"] = time.monotonic()
    obtain_lease(ns, "eth1", hook_dir=hook_dir)
    marks["lease"] = time.monotonic()
    # Undo: netdev home, unbound, VF config cleared, namespace gone.
    inside = netns_socket(ns)
    try:
        idx = inside.link_lookup(ifname="eth1")[0]
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
        inside.link("set", index=idx, state="down")
        inside.link("set", index=idx, net_ns_fd=home)
        os.close(home)
    finally:
        inside.close()
    _write(f"/sys/bus/pci/devices/{pci}/driver/unbind", pci)
    ipr.link("set", index=pf_index, vf={"vf": vf, "mac": "00:00:00:00:00:00"})
    ipr.link("set", index=pf_index, vf={"vf": vf, "vlan": 0})
    subprocess.run(["ip", "netns", "del", ns], check=True)
    return {k: v - marks["start"] for k, v in marks.items() if k != "start"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.realnic_floor")
    parser.add_argument("out", type=Path)
    parser.add_argument("--pf", required=True)
    parser.add_argument("--vf", type=int, required=True)
    parser.add_argument("--vlan", type=int, required=True)
    parser.add_argument("--count", type=int, default=8)
    args = parser.parse_args(argv)
    from pyroute2 import IPRoute

    hook_dir = Path(tempfile.mkdtemp(prefix="ciao-floor-"))
    rounds = []
    with IPRoute() as ipr:
        for n in range(args.count):
            mac = f"02:f1:00:00:{args.vf:02x}:{n:02x}"
            rounds.append(one_launch(ipr, args.pf, args.vf, args.vlan, mac, hook_dir))
    args.out.write_text(json.dumps({"rounds": rounds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
