"""SR-IOV hardware, fabric and underlay DHCP simulated in network namespaces.

No Django here.  See docs/simulator.md.  The node agent's ``sim`` driver and the
tests use::

    from simulator import Simulator, Topology, VfState, SimError
    sim = Simulator.up(Topology.from_flags(hosts=2, vfs=4), name="sim")
"""

from typing import TYPE_CHECKING

from .clean import clean
from .errors import (
    CommandFailed,
    DeviceBusy,
    InvalidArgument,
    MacSetFailed,
    NotFound,
    NotSupported,
    SimError,
)
from .faults import IGB_QUIRKS, LINK_STATE_UNSUPPORTED, MAC_NEEDS_VF_RESET, MAC_SET_FAILS
from .topology import HostSpec, PfSpec, Topology, UnderlaySpec

if TYPE_CHECKING:
    from .core import Simulator, VfState


def __getattr__(name: str):
    # The simulator proper loads on first use: a node agent that only needs a small
    # piece (netns, guest) does not pay for it (half of this package's import time).
    if name in ("Simulator", "VfState"):
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "IGB_QUIRKS",
    "LINK_STATE_UNSUPPORTED",
    "MAC_NEEDS_VF_RESET",
    "MAC_SET_FAILS",
    "CommandFailed",
    "DeviceBusy",
    "HostSpec",
    "InvalidArgument",
    "MacSetFailed",
    "NotFound",
    "NotSupported",
    "PfSpec",
    "SimError",
    "Simulator",
    "Topology",
    "UnderlaySpec",
    "VfState",
    "clean",
]
