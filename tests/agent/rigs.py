"""Test rigs: the same node (two PFs on two physnets) behind each VF driver.

A rig builds drivers, makes instance namespaces, injects faults and observes where a
VF really is *without asking the driver*, so the contract tests judge the driver by
an independent view.

Layout of every rig: pf0 on physnet1 (8 VFs, VF 7 excluded), pf1 on physnet2 (4 VFs).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from pathlib import Path

from ciaoweb.agent.drivers.sriov import SriovDriver
from tests.prereqs import missing_prerequisites, unavailable

from .fake_nic import FakeNic, FakeSysfs, vf_pci

PHYSNETS = {"physnet1": ["pf0"], "physnet2": ["pf1"]}
TOTAL_VFS = {"pf0": 8, "pf1": 4}
EXCLUDED = {"pf0": [7]}


class FakeRig:
    kind = "sriov"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nic = FakeNic(tmp / "root")
        for pf, total in TOTAL_VFS.items():
            self.nic.add_pf(pf, total, num_vfs=total)
        self.nic.add_plain_netdev("lo")
        self._ns = 0

    def driver(self, **overrides: object) -> SriovDriver:
        kwargs: dict = dict(
            node="node1",
            state_dir=self.tmp / "state",
            physnets=PHYSNETS,
            exclude=EXCLUDED,
            sysfs=FakeSysfs(self.nic),
            netlink=self.nic,
        )
        kwargs.update(overrides)
        return SriovDriver(**kwargs)

    def new_netns(self) -> str:
        self._ns += 1
        return self.nic.add_netns(f"ciao-fake-i{self._ns}")

    def vf_pci(self, pf: str, index: int) -> str:
        return vf_pci(self.nic.pfs[pf], index)

    def vf_netdev(self, pf: str, index: int) -> str:
        return f"{pf}v{index}"

    def inject_mac_fault(self, pf: str, index: int) -> None:
        self.nic.mac_faults.add((pf, index))

    def location(self, pf: str, index: int) -> tuple[str | None, str]:
        vf = self.nic.vfs[(pf, index)]
        return vf.netns, vf.name

    def close(self) -> None:
        pass


def sim_prerequisites() -> str | None:
    """Why the simulator rig cannot run here, or None when it can."""
    if missing := missing_prerequisites(("ip", "nft", "tc")):
        return "needs " + ", ".join(missing)
    try:
        import simulator

        simulator.Simulator  # noqa: B018 - the API must exist
    except (ImportError, AttributeError) as exc:
        return f"simulator API unavailable: {exc}"
    return None


class SimRig:
    """A real simulator with one host laid out like the fake node."""

    kind = "sim"

    def __init__(self, tmp: Path) -> None:
        from simulator import Simulator, Topology

        self.tmp = tmp
        self.name = f"t{os.getpid()}{uuid.uuid4().hex[:6]}"
        topo = Topology.from_dict(
            {
                "physnets": ["physnet1", "physnet2"],
                "hosts": [
                    {
                        "name": "node1",
                        "pfs": [
                            {"name": "pf0", "physnet": "physnet1", "sriov_totalvfs": 8},
                            {"name": "pf1", "physnet": "physnet2", "sriov_totalvfs": 4},
                        ],
                    },
                    {
                        "name": "node2",
                        "pfs": [{"name": "pf0", "physnet": "physnet1", "sriov_totalvfs": 4}],
                    },
                ],
            }
        )
        self.sim = Simulator.up(self.name, topo, base_dir=tmp / "sim")
        self.host = "node1"
        self._instances: list[str] = []

    def driver(self, host: str = "node1", **overrides: object) -> SriovDriver:
        from ciaoweb.agent.drivers.sim import sim_driver

        kwargs: dict = dict(
            state_dir=self.tmp / "state",
            physnets=PHYSNETS if host == "node1" else None,
            exclude=EXCLUDED if host == "node1" else None,
            sim=self.sim,
        )
        kwargs.update(overrides)
        return sim_driver(self.name, host, **kwargs)

    def new_netns(self, host: str = "node1") -> str:
        name = f"inst{len(self._instances) + 1}"
        self._instances.append(name)
        return self.sim.create_instance(host, name, "container")

    def vf_pci(self, pf: str, index: int) -> str:
        # Read through the simulator's own sysfs, not through the driver.
        root = Path(self.sim.sysfs_root(self.host))
        return os.path.basename(
            os.path.realpath(root / "class/net" / pf / "device" / f"virtfn{index}")
        )

    def vf_netdev(self, pf: str, index: int) -> str:
        return f"{pf}v{index}"

    def inject_mac_fault(self, pf: str, index: int) -> None:
        self.sim.inject_fault(self.host, pf, index, "mac_set_fails")

    def location(self, pf: str, index: int) -> tuple[str | None, str | None]:
        st = self.sim.get_vf(self.host, pf, index)
        return st.netns, st.ifname

    def netns_exec(
        self, netns: str, *args: str, timeout: float = 10
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", netns, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        self.sim.down()


@contextlib.contextmanager
def open_sim_rig(tmp_path):
    """A SimRig, closed afterwards; skips without the simulator's prerequisites (fails
    under CIAO_REQUIRE_SIM=1)."""
    if missing := sim_prerequisites():
        unavailable(f"the simulator rig {missing}")
    made = SimRig(tmp_path)
    try:
        yield made
    finally:
        made.close()
