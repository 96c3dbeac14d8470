"""Fault injection and driver quirks, stored in the simulator state.

- ``mac_set_fails`` (per VF, one shot): the next MAC set on that VF raises
  MacSetFailed, like i40e refusing an admin MAC while the VF is in use.
- ``link_state_unsupported`` (per PF, sticky): ``set_vf(link_state=...)`` raises
  NotSupported, like drivers without ndo_set_vf_link_state (igb).
- ``mac_needs_vf_reset`` (per PF, sticky): like igb/igbvf, a MAC set from the PF while
  the VF driver is bound is the admin MAC only: the VF netdev keeps its address (and
  spoofchk drops its frames) until the VF driver resets: ``reset_vf_netdev`` (the
  netdev's down/up) or ``unbind_vf`` + ``bind_vf``.
"""

from __future__ import annotations

from .errors import InvalidArgument

MAC_SET_FAILS = "mac_set_fails"
LINK_STATE_UNSUPPORTED = "link_state_unsupported"
MAC_NEEDS_VF_RESET = "mac_needs_vf_reset"
VF_FAULTS = (MAC_SET_FAILS,)
PF_FAULTS = (LINK_STATE_UNSUPPORTED, MAC_NEEDS_VF_RESET)
IGB_QUIRKS = (LINK_STATE_UNSUPPORTED, MAC_NEEDS_VF_RESET)


def add(pf_state: dict, index: int | None, fault: str) -> None:
    if fault in VF_FAULTS:
        if index is None:
            raise InvalidArgument(f"fault {fault!r} needs a VF index")
        vf = pf_state["vfs"].get(str(index))
        if vf is None:
            raise InvalidArgument(f"no VF {index}")
        if fault not in vf["faults"]:
            vf["faults"].append(fault)
    elif fault in PF_FAULTS:
        if fault not in pf_state["faults"]:
            pf_state["faults"].append(fault)
    else:
        raise InvalidArgument(f"unknown fault {fault!r}; known: {VF_FAULTS + PF_FAULTS}")


def clear(pf_state: dict, index: int | None = None) -> None:
    if index is None:
        pf_state["faults"] = []
        for vf in pf_state["vfs"].values():
            vf["faults"] = []
    elif str(index) in pf_state["vfs"]:
        pf_state["vfs"][str(index)]["faults"] = []


def consume(vf_state: dict, fault: str) -> bool:
    """True (and forget it) if this one-shot fault is armed on the VF."""
    if fault in vf_state["faults"]:
        vf_state["faults"].remove(fault)
        return True
    return False


def pf_has(pf_state: dict, fault: str) -> bool:
    return fault in pf_state["faults"]
