"""The contract suite's rigs, with the independent views the quirk tests need.

`FakeRig` and `SimRig` (rigs.py) made to behave like the real igb/igbvf pair where it
differs from the textbook, plus what a test must see without asking the driver: the MAC
the VF netdev really uses, whether a driver is bound, a rebind done behind the driver's
back, which optional knobs each PF has. tests/realnic/rigs.py has the real-kernel rig.

Layout (every rig): pf0 on physnet1, pf1 on physnet2; pf1 lacks link_state like igb.
"""

from __future__ import annotations

import contextlib

from ciaoweb.agent.drivers.sriov import SriovDriver
from tests.prereqs import unavailable

from .fake_nic import IGB_LACKS, PF_DRIVER, VF_DRIVER
from .rigs import TOTAL_VFS, FakeRig, SimRig, sim_prerequisites


class FakeQuirkRig(FakeRig):
    total_vfs = dict(TOTAL_VFS)
    num_vfs = dict(TOTAL_VFS)
    excluded = ("pf0", 7)
    has_autoprobe = True

    def __init__(self, tmp) -> None:
        super().__init__(tmp)
        self.nic.lacks["pf1"] = set(IGB_LACKS)

    def driver(self, **overrides: object) -> SriovDriver:
        return super().driver(vf_drivers={PF_DRIVER: VF_DRIVER}, **overrides)

    def supports(self, pf: str, knob: str) -> bool:
        return knob not in self.nic.lacks[pf]

    def vf_netdev(self, pf: str, index: int) -> str | None:
        vf = self.nic.vfs[(pf, index)]
        return vf.netdev if vf.bound else None

    def netdev_mac(self, pf: str, index: int) -> str | None:
        vf = self.nic.vfs[(pf, index)]
        return vf.netdev_mac if vf.bound else None

    def vf_bound(self, pf: str, index: int) -> bool:
        return self.nic.vfs[(pf, index)].bound

    def set_admin_mac_behind_driver(self, pf: str, index: int, mac: str) -> None:
        self.nic.set_vf(pf, index, mac=mac)

    def reset_behind_driver(self, pf: str, index: int) -> None:
        vf = self.nic.vfs[(pf, index)]
        self.nic.reset_netdev(pf, index, vf.name, vf.netns)

    def rebind_behind_driver(self, pf: str, index: int) -> None:
        vf = self.nic.vfs[(pf, index)]
        self.nic._unbind(pf, index, vf)
        self.nic._bind(pf, index, vf)


class SimQuirkRig(SimRig):
    total_vfs = dict(TOTAL_VFS)
    num_vfs = dict(TOTAL_VFS)
    excluded = ("pf0", 7)
    has_autoprobe = False  # the simulator's VFs are always probed

    def __init__(self, tmp) -> None:
        import simulator

        super().__init__(tmp)
        for pf in ("pf0", "pf1"):
            self.sim.inject_fault(self.host, pf, None, simulator.MAC_NEEDS_VF_RESET)
        self.sim.inject_fault(self.host, "pf1", None, simulator.LINK_STATE_UNSUPPORTED)

    def supports(self, pf: str, knob: str) -> bool:
        return self.sim.pf_capabilities(self.host, pf)[knob]

    def netdev_mac(self, pf: str, index: int) -> str | None:
        return self.sim.vf_netdev_mac(self.host, pf, index)

    def vf_bound(self, pf: str, index: int) -> bool:
        return self.sim.get_vf(self.host, pf, index).bound

    def set_admin_mac_behind_driver(self, pf: str, index: int, mac: str) -> None:
        self.sim.set_vf(self.host, pf, index, mac=mac)

    def reset_behind_driver(self, pf: str, index: int) -> None:
        self.sim.reset_vf_netdev(self.host, pf, index)

    def rebind_behind_driver(self, pf: str, index: int) -> None:
        self.sim.unbind_vf(self.host, pf, index)
        self.sim.bind_vf(self.host, pf, index)


@contextlib.contextmanager
def open_sim_quirk_rig(tmp_path):
    """A SimQuirkRig, closed afterwards; skips without the simulator's prerequisites
    (fails under CIAO_REQUIRE_SIM=1)."""
    if missing := sim_prerequisites():
        unavailable(f"the simulator rig {missing}")
    made = SimQuirkRig(tmp_path)
    try:
        yield made
    finally:
        made.close()
