"""The contract suite's rig on the real kernel: igb PFs inside a QEMU guest.

Runs *inside* the guest (tests/realnic/test_driver_contract_realnic.py starts pytest
there with CIAO_CONTRACT_RIGS=realnic). The guest boots with two igb PFs renamed pf0 and
pf1; this rig gives them the contract's layout (pf0: 7 VFs = igb's sriov_totalvfs, VF 6
excluded; pf1: 4 VFs), bound to igbvf like after a plain `echo N > sriov_numvfs`, and
observes VFs through sysfs and iproute2, never through the driver.

An injected MAC fault is the one thing the kernel cannot be told to do: a wrapper around
the real netlink seam fails the next MAC write of that VF (the rollback that follows runs
on the real kernel).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from ciaoweb.agent.drivers.base import TransientError
from ciaoweb.agent.drivers.netlink import PyrouteNetlink
from ciaoweb.agent.drivers.sriov import SriovDriver

PHYSNETS = {"physnet1": ["pf0"], "physnet2": ["pf1"]}
LAYOUT = {"pf0": 7, "pf1": 4}
NS_PREFIX = "ciao-rn-i"
SYS = Path("/sys")


def _run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode:
        raise RuntimeError(f"{argv!r}: {done.stderr.strip()}")
    return done.stdout


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


class FaultyNetlink:
    """The real seam, except that a MAC write to a VF in `faults` fails once (EAGAIN)."""

    def __init__(self, faults: set[tuple[str, int]]) -> None:
        self.real = PyrouteNetlink()
        self.faults = faults

    def set_vf(self, pf: str, index: int, **cfg: Any) -> None:
        if "mac" in cfg and (pf, index) in self.faults:
            self.faults.discard((pf, index))
            raise TransientError(f"{pf} vf {index} set mac: {os.strerror(errno.EAGAIN)}")
        self.real.set_vf(pf, index, **cfg)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class RealRig:
    kind = "realnic"
    total_vfs = {"pf0": 7, "pf1": 7}
    num_vfs = dict(LAYOUT)
    excluded = ("pf0", 6)
    has_autoprobe = True

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.faults: set[tuple[str, int]] = set()
        self._ns: list[str] = []
        for pf, n in LAYOUT.items():
            self._reset_pf(pf, n)

    # --- layout -----------------------------------------------------------------

    def _device(self, pf: str) -> Path:
        return SYS / "class" / "net" / pf / "device"

    def _reset_pf(self, pf: str, n: int) -> None:
        device = self._device(pf)
        _run("ip", "link", "set", pf, "up")
        deadline = time.monotonic() + 20
        while (SYS / "class" / "net" / pf / "carrier").read_text().strip() != "1":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pf}: no carrier")
            time.sleep(0.1)
        _write(device / "sriov_drivers_autoprobe", "1")
        numvfs = int((device / "sriov_numvfs").read_text())
        bound = all((device / f"virtfn{i}" / "driver").exists() for i in range(numvfs))
        if numvfs != n or not bound:
            if numvfs:
                _write(device / "sriov_numvfs", "0")
            _write(device / "sriov_numvfs", str(n))
        for i in range(n):
            self._wait_home(pf, i)
        # Back to a fresh VF's admin config, one knob per request, only what differs.
        fresh = {"vlan": 0, "spoofchk": "on", "trust": "off", "max_tx_rate": 0}
        for vf in json.loads(_run("ip", "-d", "-j", "link", "show", pf))[0]["vfinfo_list"]:
            have = {
                "vlan": vf.get("vlan_list", [{}])[0].get("vlan", 0),
                "spoofchk": "on" if vf.get("spoofchk") else "off",
                "trust": "on" if vf.get("trust") else "off",
                "max_tx_rate": vf.get("rate", {}).get("max_tx", 0),
            }
            for knob, value in fresh.items():
                if have[knob] != value:
                    _run("ip", "link", "set", pf, "vf", str(vf["vf"]), knob, str(value))
            if vf.get("address") != "00:00:00:00:00:00":
                _run("ip", "link", "set", pf, "vf", str(vf["vf"]), "mac", "00:00:00:00:00:00")

    def _wait_home(self, pf: str, index: int) -> None:
        """A VF netdev comes back to the host namespace when its namespace is deleted
        (asynchronously); rebind it if it does not."""
        deadline = time.monotonic() + 5
        while self.vf_netdev(pf, index) is None:
            if time.monotonic() > deadline:
                self.rebind_behind_driver(pf, index)
                return
            time.sleep(0.05)

    # --- the rig interface --------------------------------------------------------

    def driver(self, **overrides: object) -> SriovDriver:
        kwargs: dict = dict(
            node="node1",
            state_dir=self.tmp / "state",
            physnets=PHYSNETS,
            exclude={"pf0": [6]},
            netlink=FaultyNetlink(self.faults),
        )
        kwargs.update(overrides)
        return SriovDriver(**kwargs)

    def new_netns(self) -> str:
        name = f"{NS_PREFIX}{len(self._ns) + 1}"
        _run("ip", "netns", "add", name)
        self._ns.append(name)
        return name

    def vf_pci(self, pf: str, index: int) -> str:
        return os.path.basename(os.path.realpath(self._device(pf) / f"virtfn{index}"))

    def vf_netdev(self, pf: str, index: int) -> str | None:
        try:
            names = sorted(os.listdir(self._device(pf) / f"virtfn{index}" / "net"))
        except FileNotFoundError:
            return None
        return names[0] if names else None

    def vf_bound(self, pf: str, index: int) -> bool:
        return (self._device(pf) / f"virtfn{index}" / "driver").exists()

    def inject_mac_fault(self, pf: str, index: int) -> None:
        self.faults.add((pf, index))

    def location(self, pf: str, index: int) -> tuple[str | None, str | None]:
        """(namespace, name) of the VF netdev, found by its PCI address."""
        home = self.vf_netdev(pf, index)
        if home is not None:
            return None, home
        pci = self.vf_pci(pf, index)
        for ns in self._ns:
            # `ip netns exec` mounts the namespace's own /sys.
            out = _run("ip", "netns", "exec", ns, "ls", "-l", "/sys/class/net", check=False)
            for line in out.splitlines():
                if f"/{pci}/net/" in line:
                    return ns, line.split(" -> ")[0].split()[-1]
        return None, None

    def netdev_mac(self, pf: str, index: int) -> str | None:
        ns, name = self.location(pf, index)
        if name is None:
            return None
        prefix = ["ip", "-n", ns] if ns else ["ip"]
        words = _run(*prefix, "-o", "link", "show", "dev", name).split()
        return words[words.index("link/ether") + 1]

    def set_admin_mac_behind_driver(self, pf: str, index: int, mac: str) -> None:
        _run("ip", "link", "set", pf, "vf", str(index), "mac", mac)

    def reset_behind_driver(self, pf: str, index: int) -> None:
        ns, name = self.location(pf, index)
        prefix = ["ip", "-n", ns] if ns else ["ip"]
        _run(*prefix, "link", "set", name, "up")  # igbvf resets on the way down
        _run(*prefix, "link", "set", name, "down")

    def rebind_behind_driver(self, pf: str, index: int) -> None:
        pci = self.vf_pci(pf, index)
        device = self._device(pf) / f"virtfn{index}"
        if (device / "driver").exists():
            _write(device / "driver" / "unbind", pci)
        _write(device / "driver_override", "igbvf")
        _write(SYS / "bus" / "pci" / "drivers" / "igbvf" / "bind", pci)

    def supports(self, pf: str, knob: str) -> bool:
        return False  # igb: link_state EOPNOTSUPP, min_tx_rate EINVAL, 802.1ad unsupported

    def close(self) -> None:
        for ns in self._ns:
            _run("ip", "netns", "del", ns, check=False)
