"""A PF's optional knobs, as its agent reports them (`PhysicalFunction.capabilities`).

Some PF drivers lack knobs others have: the real igb refuses `link_state` (EOPNOTSUPP),
`min_tx_rate` (EINVAL) and an 802.1ad VLAN protocol (EPROTONOSUPPORT). The agent probes
them once per PF on an unowned VF (ciaoweb.agent.drivers: `PfInfo.capabilities`, the
same names as `OPTIONAL_KNOBS` there) and reports `{"link_state": bool, "min_tx_rate":
bool, "vlan_8021ad": bool}` with each PF of its inventory; `{}` while the PF has no VF
to probe on.

Meaning, everywhere on the controller: `False` is "this PF cannot", `True` is "it can",
a missing knob is "not known yet" and is not held against the PF (the agent still
refuses a config that needs a knob it turns out to lack, before writing anything).

An agent is an untrusted sender: `clean_capabilities` keeps only known knobs with a
boolean value and says what it dropped; it never raises.
"""

from __future__ import annotations

from typing import Any

# The agent's OPTIONAL_KNOBS (ciaoweb/agent/drivers/netlink.py); a test keeps them equal.
KNOBS = ("link_state", "min_tx_rate", "vlan_8021ad")
LABELS = {"link_state": "link_state", "min_tx_rate": "min_tx_rate", "vlan_8021ad": "802.1ad"}


def clean_capabilities(raw: Any) -> tuple[dict[str, bool], list[str], list[str]]:
    """`(known knobs, unknown keys, problems)` of a reported capabilities object.

    Unknown keys (a newer agent's knobs) are left out and named, not held against the
    sender. A value that is not a boolean is left out with a problem message; anything
    but an object is `{}` (nothing known) with one."""
    if not isinstance(raw, dict):
        return {}, [], [f"capabilities must be an object, got {type(raw).__name__}"]
    cleaned: dict[str, bool] = {}
    ignored: list[str] = []
    problems: list[str] = []
    for key, value in raw.items():
        if key not in KNOBS:
            ignored.append(str(key)[:40])
        elif not isinstance(value, bool):
            problems.append(f"capability {key} must be true or false, got {str(value)[:40]!r}")
        else:
            cleaned[key] = value
    return dict(sorted(cleaned.items())), ignored, problems


def unsupported(capabilities: Any) -> list[str]:
    """The knobs a PF reports it lacks (value False), in KNOBS order."""
    if not isinstance(capabilities, dict):
        return []
    return [knob for knob in KNOBS if capabilities.get(knob) is False]
