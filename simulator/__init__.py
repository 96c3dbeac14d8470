"""SR-IOV hardware, fabric and underlay DHCP simulated in network namespaces.

No Django here.  See docs/simulator.md.  The node agent's ``sim`` driver and the
tests use::

    from simulator import Simulator, Topology, VfState, SimError
    sim = Simulator.up(Topology.from_flags(hosts=2, vfs=4), name="sim")
"""

from .clean import clean
from .core import Simulator, VfState
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
