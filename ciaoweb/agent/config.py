"""Node agent configuration: from a YAML file, CLI flags and the environment.

Like Neutron's SR-IOV agent: `physical_device_mappings` says which PFs serve which
physnet, `exclude_devices` keeps VFs away from us (e.g. the host's own). Both take
Neutron's syntax too (`physnet1:ens1f0,physnet2:ens1f1`, `ens1f0:0000:07:00.2;0000:07:00.3`).

Validated by pydantic: an unknown key, a value of the wrong type, a malformed interface
name, physnet or PCI address is refused, each problem one line naming its key path
(`ConfigError`); the agent exits 2 with them (ciaoweb/agent/__main__.py). Every key is in
deploy/agent.example.yaml and docs/configuration.md.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ciaoweb.core.config_errors import is_own, reason
from ciaoweb.core.credentials import Credential
from ciaoweb.core.redis_urls import check_redis_url

from .dhcp import validate
from .drivers.base import InvalidArgument

ENV_VAR = "CIAO_AGENT_CONFIG"
Driver = Literal["sim", "sriov"]
DRIVERS = get_args(Driver)
# DDDD:BB:DD.F, as in /sys/bus/pci/devices: domain, bus, device (0-1f), function (0-7).
PCI_RE = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]\Z")
# A physnet is a name the controller stores (64 characters) and Neutron's syntax
# separates with ':' and ',': letters, digits, '_', '.', '-'.
PHYSNET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
# The command-line flag of a key that is not --<key with dashes> (ciaoweb/agent/__main__.py).
FLAGS = {"broker_url": "--broker"}


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads an unquoted 0000:07:00.2 as a base-60 float (420.2): here a PCI
    address stays a string, quoted or not."""


_Loader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "0123456789":
    _Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(
        0, ("tag:yaml.org,2002:str", re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F.]+$"))
    )


class ConfigError(ValueError):
    """The configuration is refused: one line per problem, each naming its key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- values -------------------------------------------------------------------------


def _ifname(value: Any) -> str:
    """A netdev name, by the agent's own rule (ciaoweb.agent.dhcp.validate.ifname)."""
    with contextlib.suppress(InvalidArgument):
        if isinstance(value, str):
            return validate.ifname(value)
    raise ValueError(
        f"{value!r} is not an interface name (1-15 characters: letters, digits, '_', '.', '-')"
    )


def _physnet(value: Any) -> str:
    if isinstance(value, str) and PHYSNET_RE.match(value):
        return value
    raise ValueError(
        f"{value!r} is not a physnet name (1-64 characters: letters, digits, '_', '.', '-')"
    )


def _node(value: Any) -> str:
    if isinstance(value, str) and validate.LABEL_RE.match(value):
        return value
    raise ValueError(f"{value!r} is not a host name (a DNS label: a-z, 0-9, '-')")


def _vf(value: Any) -> int | str:
    """A VF to exclude: its index on the PF, or its PCI address."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and PCI_RE.match(value.strip().lower()):
        return value.strip().lower()
    if isinstance(value, str) and ":" in value:
        raise ValueError(f"{value!r} is not a PCI address (expected DDDD:BB:DD.F)")
    raise ValueError(f"{value!r} is not a VF index or a PCI address (expected N or DDDD:BB:DD.F)")


def _not_bool(value: Any) -> Any:
    """YAML's `yes` is True, and pydantic would take True as the number 1."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    return value


def _ip(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _ip_or_empty(value: Any) -> str:
    return "" if value == "" else _ip(value)


PfName = Annotated[str, PlainValidator(_ifname)]
Physnet = Annotated[str, PlainValidator(_physnet)]
VfRef = Annotated[int | str, PlainValidator(_vf)]
Count = Annotated[int, BeforeValidator(_not_bool), Field(ge=1)]
Seconds = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]


# --- Neutron's syntax and the short forms ------------------------------------------------


def _items(value: str | Iterable[Any], key: str) -> Iterable[str]:
    """The comma-separated items of a Neutron option, as a string or a list of strings."""
    for part in [value] if isinstance(value, str) else value:
        if not isinstance(part, str):
            raise ValueError(f"{part!r} is not a {key} string")
        yield from filter(None, (item.strip() for item in part.split(",")))


def _mapping_form(value: Any) -> Any:
    """`physical_device_mappings` as {physnet: [pf, ...]}: from Neutron's
    `physnet1:ens1f0,physnet1:ens1f1` (a string or a list of them), or a mapping whose
    values are one PF name or a list."""
    if value is None:
        return {}
    if isinstance(value, str | list | tuple):
        mapping: dict[str, list[str]] = {}
        for item in _items(value, "physnet:pf"):
            physnet, sep, pf = (part.strip() for part in item.partition(":"))
            if not sep or not physnet or not pf:
                raise ValueError(f"{item!r} is not physnet:pf (e.g. physnet1:ens1f0)")
            mapping.setdefault(physnet, []).append(pf)
        return mapping
    if isinstance(value, Mapping):
        return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
    return value  # pydantic refuses it as "not a mapping"


def _exclude_form(value: Any) -> Any:
    """`exclude_devices` as {pf: [vf, ...]}: from Neutron's
    `ens1f0:0000:07:00.2;0000:07:00.3,ens1f1:5` (a string or a list of them), or a
    mapping whose values are one VF (index or PCI address), `;`-separated VFs, or a list."""
    if value is None:
        return {}
    if isinstance(value, str | list | tuple):
        excluded: dict[str, list[str]] = {}
        for item in _items(value, "pf:vf;vf"):
            pf, sep, vfs = (part.strip() for part in item.partition(":"))
            if not sep or not pf or not vfs:
                raise ValueError(
                    f"{item!r} is not pf:vf;vf (e.g. ens1f0:0000:07:00.2;0000:07:00.3)"
                )
            excluded.setdefault(pf, []).extend(v.strip() for v in vfs.split(";") if v.strip())
        return excluded
    if isinstance(value, Mapping):
        return {pf: _vf_list(vfs) for pf, vfs in value.items()}
    return value


def _vf_list(vfs: Any) -> Any:
    """One PF's VFs: "addr", "addr;addr", an index, or already a list."""
    if isinstance(vfs, str):
        return [v.strip() for v in vfs.split(";") if v.strip()]
    if isinstance(vfs, int):
        return [vfs]
    return vfs


# --- the configuration ----------------------------------------------------------------


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: Annotated[str, PlainValidator(_node)]
    driver: Driver = "sim"
    sim_name: str = "sim"
    broker_url: Annotated[str, PlainValidator(check_redis_url)] = "redis://127.0.0.1:6379/0"
    # Empty: $CIAO_VAR_DIR/agent/<node> (var/ in the checkout without CIAO_VAR_DIR)
    state_dir: str = ""
    # physnet -> PF netdev names; empty means "every SR-IOV PF, physnet from the driver"
    physical_device_mappings: Annotated[
        dict[Physnet, list[PfName]], BeforeValidator(_mapping_form)
    ] = Field(default_factory=dict)
    # PF netdev -> VFs the agent must never touch (VF index or PCI address)
    exclude_devices: Annotated[dict[PfName, list[VfRef]], BeforeValidator(_exclude_form)] = Field(
        default_factory=dict
    )
    network_node: bool = False
    # This node's VXLAN tunnel endpoint for overlay networks (real nodes; the simulator
    # knows each host's management address itself)
    overlay_local_ip: Annotated[str, PlainValidator(_ip_or_empty)] = ""
    # The host's credential from its enrolment (ciaoweb.core.credentials), a 0600 file.
    credential_file: str = ""
    # No hypervisor here: run a VM as a namespace with a stand-in guest that does its own
    # DHCP (runtime.NetnsRuntime); the emulated-igb nodes use it.
    vm_guests: bool = False
    # DHCPDISCOVERs a container's client sends (one a second) before it gives up: more
    # where the wire or the server is slow (the emulated nodes under TCG).
    dhcp_tries: Count = 3
    # Seconds between beats (a SET in the broker's Redis, ciaoweb.core.liveness).
    heartbeat_interval: Seconds = 1.0
    reconcile_interval: Seconds = 60.0
    concurrency: Count = 2
    # The agent's own Prometheus endpoint (ciaoweb.agent.metrics): off unless a port is
    # set; on the loopback unless told otherwise (e.g. the host's management address).
    metrics_port: Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=65535)] = 0
    metrics_address: Annotated[str, PlainValidator(_ip)] = "127.0.0.1"

    @field_validator("physical_device_mappings")
    @classmethod
    def _one_physnet_per_pf(cls, mappings: dict[str, list[str]]) -> dict[str, list[str]]:
        seen: dict[str, str] = {}
        for physnet, pfs in mappings.items():
            for pf in pfs:
                if pf in seen:
                    where = "twice" if seen[pf] == physnet else f"under {seen[pf]} and {physnet}"
                    raise ValueError(f"PF {pf!r} is listed {where} (a PF serves one physnet)")
                seen[pf] = physnet
        return mappings

    @field_validator("exclude_devices")
    @classmethod
    def _mapped_pfs_only(cls, excluded: dict[str, list], info: ValidationInfo) -> dict:
        """A PF the mappings do not name would exclude nothing: a typo must not hand out
        the VF it meant to keep."""
        mappings = info.data.get("physical_device_mappings")
        mapped = {pf for pfs in (mappings or {}).values() for pf in pfs}
        for pf in excluded:
            if mapped and pf not in mapped:
                raise ValueError(
                    f"PF {pf!r} is not in physical_device_mappings ({', '.join(sorted(mapped))})"
                )
        return {pf: list(dict.fromkeys(vfs)) for pf, vfs in excluded.items()}

    @model_validator(mode="after")
    def _defaults_and_state_dir(self) -> AgentConfig:
        if self.driver == "sim":
            # Only here: the sim driver needs the simulator anyway, a real node may lack it.
            from simulator.errors import SimError
            from simulator.names import check_sim_name

            try:
                check_sim_name(self.sim_name)
            except SimError as exc:
                raise ValueError(f"sim_name: {exc}") from None
        if not self.state_dir:
            base = Path(os.environ.get("CIAO_VAR_DIR", Path(__file__).resolve().parents[2] / "var"))
            self.state_dir = str(base / "agent" / self.node)
        try:
            Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"state_dir: cannot create {self.state_dir}: {exc.strerror}") from None
        return self

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
        return self.model_dump_json()

    @classmethod
    def from_env(cls) -> AgentConfig:
        """The worker's child processes get the config the parent was started with."""
        raw = os.environ.get(ENV_VAR)
        if not raw:
            raise RuntimeError(f"{ENV_VAR} is not set: start agents with `python -m ciaoweb.agent`")
        return cls.load(json.loads(raw), source=ENV_VAR)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        environment: Mapping[str, tuple[str, Any]] | None = None,
        **overrides: Any,
    ) -> AgentConfig:
        """The YAML file's keys over `environment`'s defaults, the command line's
        (`overrides`, None = not given) over both."""
        try:
            data = yaml.load(Path(path).read_text(), Loader=_Loader)  # a SafeLoader
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read it: {exc.strerror}"]) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError([f"{path}: {where}not valid YAML: {problem}"]) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            kind = type(data).__name__
            raise ConfigError([f"{path}: must be a mapping of keys to values, not a {kind}"])
        return cls.load(data, source=str(path), environment=environment, overrides=overrides)

    @classmethod
    def load(
        cls,
        data: Mapping[str, Any],
        *,
        source: str = "command line",
        environment: Mapping[str, tuple[str, Any]] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> AgentConfig:
        """Validate `data` (from `source`) over `environment` ({key: (variable, value)},
        defaults from environment variables) with `overrides` (command-line flags) on top.
        ConfigError lists every problem, each with its key path (a flag's as --flag, a
        variable's by its name)."""
        flags = {k: v for k, v in (overrides or {}).items() if v is not None}
        env = {k: var for k, (var, _) in (environment or {}).items() if k not in {**data, **flags}}
        values = {k: value for k, (_, value) in (environment or {}).items() if k in env}
        try:
            return cls.model_validate({**values, **data, **flags})
        except ValidationError as exc:
            raise ConfigError(
                [_problem(error, source, flags, env) for error in exc.errors(include_url=False)]
            ) from None


def key_path(loc: Iterable[Any]) -> str:
    """("exclude_devices", "ens1f0", 1) -> "exclude_devices.ens1f0[1]"."""
    path = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker of a refused mapping key
            continue
        path += f"[{part}]" if isinstance(part, int) else f"{'.' if path else ''}{part}"
    return path


def _problem(
    error: Mapping[str, Any], source: str, flags: Mapping[str, Any], env: Mapping[str, str]
) -> str:
    loc = tuple(error["loc"])
    if not loc:  # a check across keys: its message starts with the key
        return f"{source}: {reason(error)}"
    if loc[0] in flags:
        flag = FLAGS.get(str(loc[0]), "--" + str(loc[0]).replace("_", "-"))
        source, path = "command line", flag
    elif loc[0] in env:
        source, path = "environment", env[loc[0]]
    else:
        path = key_path(loc)
    if error["type"] == "missing":
        return f"{source}: {path}: is required"
    if error["type"] == "extra_forbidden":
        known = list(AgentConfig.model_fields)
        close = difflib.get_close_matches(str(loc[0]), known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        return f"{source}: {path}: unknown key ({hint})"
    text = reason(error) if is_own(error) else f"{error['input']!r} {reason(error)}"
    return f"{source}: {path}: {text}"
