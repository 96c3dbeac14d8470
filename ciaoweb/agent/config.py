"""Node agent configuration: from a YAML file, CLI flags and the environment.

Like Neutron's SR-IOV agent: `physical_device_mappings` says which PFs serve which
physnet, `exclude_devices` keeps VFs away from us (e.g. the host's own).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ciaoweb.core.credentials import Credential

ENV_VAR = "CIAO_AGENT_CONFIG"
DRIVERS = ("sim", "sriov")


@dataclass
class AgentConfig:
    node: str
    driver: str = "sim"
    sim_name: str = "sim"
    broker_url: str = "redis://127.0.0.1:6379/0"
    state_dir: str = ""
    # physnet -> list of PF netdev names; empty means "every SR-IOV PF, physnet from driver"
    physical_device_mappings: dict[str, list[str]] = field(default_factory=dict)
    # PF netdev -> VF indexes the agent must never touch
    exclude_devices: dict[str, list[int]] = field(default_factory=dict)
    network_node: bool = False
    # This node's VXLAN tunnel endpoint for overlay networks (real nodes; the simulator
    # knows each host's management address itself)
    overlay_local_ip: str = ""
    # The host's credential from its enrolment (ciaoweb.core.credentials), a 0600 file.
    credential_file: str = ""
    # No hypervisor here: run a VM as a namespace with a stand-in guest that does its own
    # DHCP (runtime.NetnsRuntime); the emulated-igb nodes use it.
    vm_guests: bool = False
    # DHCPDISCOVERs a container's client sends (one a second) before it gives up: more
    # where the wire or the server is slow (the emulated nodes under TCG).
    dhcp_tries: int = 3
    heartbeat_interval: float = 5.0
    reconcile_interval: float = 60.0
    concurrency: int = 2

    def __post_init__(self) -> None:
        if self.driver not in DRIVERS:
            raise ValueError(f"driver must be one of {', '.join(DRIVERS)}, not {self.driver!r}")
        if not self.state_dir:
            base = Path(os.environ.get("CIAO_VAR_DIR", Path(__file__).resolve().parents[2] / "var"))
            self.state_dir = str(base / "agent" / self.node)
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)

    def credential(self) -> Credential | None:
        if not self.credential_file:
            return None
        credential = Credential.read(self.credential_file)
        if credential.node != self.node:
            raise ValueError(
                f"credential file {self.credential_file} is for {credential.node}, not {self.node}"
            )
        return credential

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> AgentConfig:
        """The worker's child processes get the config the parent was started with."""
        raw = os.environ.get(ENV_VAR)
        if not raw:
            raise RuntimeError(f"{ENV_VAR} is not set: start agents with `python -m ciaoweb.agent`")
        return cls(**json.loads(raw))

    @classmethod
    def from_file(cls, path: str | Path, **overrides) -> AgentConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)
