"""The node agent's configuration (ciaoweb/agent/config.py): every bad key refused with its
key path, the short forms and Neutron's syntax accepted, the example config loads, and
the agent's command line exits 2 with the message, never a traceback."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ciaoweb.agent.config import ENV_VAR, AgentConfig, ConfigError
from tests.agent.rigs import FakeRig

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "agent.example.yaml"
DOCS = REPO / "docs" / "configuration.md"
# The fake rig's NIC: pf0 (8 VFs) on physnet1, pf1 (4 VFs) on physnet2.
MAPPED = {"physical_device_mappings": {"physnet1": ["pf0"], "physnet2": ["pf1"]}}


@pytest.fixture(autouse=True)
def _var_dir(tmp_path, monkeypatch):
    """Default state dirs land under the test's tmp dir, never the checkout's var/."""
    monkeypatch.setenv("CIAO_VAR_DIR", str(tmp_path / "var"))


def load(data: dict, **flags) -> AgentConfig:
    return AgentConfig.load(data, source="agent.yaml", overrides={"node": "node1", **flags})


def problems(data: dict, **flags) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load(data, **flags)
    return refused.value.problems


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


# --- the reported configs --------------------------------------------------------------


def test_one_pci_address_excludes_that_vf_not_a_set_of_characters(tmp_path):
    rig = FakeRig(tmp_path)
    pci = rig.vf_pci("pf1", 2)
    config = load({**MAPPED, "exclude_devices": {"pf1": pci}}, driver="sriov")
    assert config.exclude_devices == {"pf1": [pci]}
    pfs = rig.driver(exclude=config.exclude_devices).discover()
    assert [vf.index for vf in next(pf for pf in pfs if pf.name == "pf1").vfs] == [0, 1, 3]


def test_one_pf_name_maps_that_pf_not_its_letters(tmp_path):
    config = load({"physical_device_mappings": {"physnet2": "pf1"}}, driver="sriov")
    assert config.physical_device_mappings == {"physnet2": ["pf1"]}
    rig = FakeRig(tmp_path)
    assert [pf.name for pf in rig.driver(physnets=config.physical_device_mappings).discover()] == [
        "pf1"
    ]


def test_a_misspelt_key_is_refused_by_name_with_the_closest_one():
    assert problems({"physical_device_mapings": {"physnet1": "ens1f0"}}) == [
        "agent.yaml: physical_device_mapings: unknown key (did you mean physical_device_mappings?)"
    ]
    [line] = problems({"colour": "blue"})
    assert line.startswith("agent.yaml: colour: unknown key (known keys: node, driver,")


def test_a_bad_pci_address_is_refused_with_its_key_path():
    data = {**MAPPED, "exclude_devices": {"pf0": ["0000:07:00.2", "0000:07:00"]}}
    assert problems(data, driver="sriov") == [
        "agent.yaml: exclude_devices.pf0[1]: '0000:07:00' is not a PCI address "
        "(expected DDDD:BB:DD.F)"
    ]


@pytest.mark.parametrize(
    ("data", "path", "says"),
    [
        (
            {"physical_device_mappings": {"physnet1": "ens1f0ens1f0ens1f0"}},
            "physical_device_mappings.physnet1[0]",
            "is not an interface name",
        ),
        (
            {"physical_device_mappings": {"physnet1": ["ok0", "ens/1"]}},
            "physical_device_mappings.physnet1[1]",
            "'ens/1' is not an interface name",
        ),
        (
            {"physical_device_mappings": {"physnet1": "ens 1"}},
            "physical_device_mappings.physnet1[0]",
            "'ens 1' is not an interface name",
        ),
        (
            {"physical_device_mappings": {"phys net": "ens1"}},
            "physical_device_mappings.phys net",
            "is not a physnet name",
        ),
        (
            {"physical_device_mappings": {"physnet1": None}},
            "physical_device_mappings.physnet1",
            "None is not a list",
        ),
        ({"physical_device_mappings": 5}, "physical_device_mappings", "5 is not a mapping"),
        (
            {"physical_device_mappings": "physnet1"},
            "physical_device_mappings",
            "'physnet1' is not physnet:pf",
        ),
        (
            {"physical_device_mappings": ["physnet1:a", "physnet2:a"]},
            "physical_device_mappings",
            "PF 'a' is listed under physnet1 and physnet2",
        ),
        (
            {"physical_device_mappings": {"physnet1": ["a", "a"]}},
            "physical_device_mappings",
            "PF 'a' is listed twice",
        ),
        (
            {"exclude_devices": {"ens1/0": [1]}},
            "exclude_devices.ens1/0",
            "'ens1/0' is not an interface name",
        ),
        (
            {"exclude_devices": {"pf0": [-1]}},
            "exclude_devices.pf0[0]",
            "-1 is not a VF index or a PCI address",
        ),
        ({"exclude_devices": {"pf0": [True]}}, "exclude_devices.pf0[0]", "True is not a VF index"),
        (
            {"exclude_devices": {"pf0": "0000:07:20.1"}},
            "exclude_devices.pf0[0]",
            "'0000:07:20.1' is not a PCI address",
        ),
        ({"exclude_devices": "pf0"}, "exclude_devices", "'pf0' is not pf:vf;vf"),
        (
            {**MAPPED, "exclude_devices": {"pf9": [1]}},
            "exclude_devices",
            "PF 'pf9' is not in physical_device_mappings (pf0, pf1)",
        ),
        ({"driver": "kvm"}, "driver", "'kvm' must be 'sim' or 'sriov'"),
        ({"concurrency": 0}, "concurrency", "0 must be at least 1"),
        ({"concurrency": "yes"}, "concurrency", "'yes' is not an integer"),
        ({"dhcp_tries": True}, "dhcp_tries", "True is not a number"),
        ({"heartbeat_interval": -1}, "heartbeat_interval", "-1 must be more than 0"),
        ({"reconcile_interval": "soon"}, "reconcile_interval", "'soon' is not a number"),
        ({"network_node": "maybe"}, "network_node", "'maybe' is not a boolean"),
        (
            {"overlay_local_ip": "10.0.0.300"},
            "overlay_local_ip",
            "'10.0.0.300' is not an IP address",
        ),
        ({"broker_url": "http://redis"}, "broker_url", "not a Redis URL"),
        ({"metrics_port": 70000}, "metrics_port", "70000 must be at most 65535"),
        ({"state_dir": 5}, "state_dir", "5 is not a string"),
    ],
)
def test_each_bad_value_is_one_line_naming_its_key(data, path, says):
    [line] = problems({"driver": "sriov", **data})
    assert line.startswith(f"agent.yaml: {path}: ") and says in line, line


def test_a_bad_host_name_is_refused_from_the_flag_or_the_file():
    assert problems({}, node="Node_1") == [
        "command line: --node: 'Node_1' is not a host name (a DNS label: a-z, 0-9, '-')"
    ]
    with pytest.raises(ConfigError) as refused:
        AgentConfig.load({"node": "a/b"}, source="agent.yaml")
    assert refused.value.problems[0].startswith("agent.yaml: node: 'a/b' is not a host name")
    with pytest.raises(ConfigError) as refused:
        AgentConfig.load({}, source="agent.yaml")
    assert refused.value.problems == ["agent.yaml: node: is required"]


def test_every_problem_is_listed_at_once():
    found = problems({"driver": "kvm", "concurrency": 0, "colour": 1})
    assert [line.split(":")[1].strip() for line in found] == ["driver", "concurrency", "colour"]


def test_a_bad_flag_is_named_as_the_flag_and_a_bad_broker_variable_by_its_name():
    assert problems({}, heartbeat_interval=0.0) == [
        "command line: --heartbeat-interval: 0.0 must be more than 0"
    ]
    assert problems({}, broker_url="http://redis") == [
        "command line: --broker: not a Redis URL (redis://, rediss://, unix://)"
    ]
    assert problems({}, broker_url="rediss://redis:6380/0") == [
        "command line: --broker: a rediss:// URL must verify the server's certificate: add "
        "?ssl_cert_reqs=required&ssl_ca_certs=/path/to/ca.pem"
    ]
    verified = "rediss://redis:6380/0?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=/etc/ca.pem"
    assert load({}, broker_url=verified).broker_url == verified
    with pytest.raises(ConfigError) as refused:
        AgentConfig.load(
            {}, environment={"broker_url": ("REDIS_URL", "nope")}, overrides={"node": "n1"}
        )
    assert refused.value.problems == [
        "environment: REDIS_URL: not a Redis URL (redis://, rediss://, unix://)"
    ]


# --- accepted forms --------------------------------------------------------------------


@pytest.mark.parametrize(
    "mappings",
    [
        "physnet1:ens1f0,physnet1:ens1f1,physnet2:ens2f0",
        " physnet1:ens1f0 , physnet1:ens1f1,physnet2:ens2f0,",
        ["physnet1:ens1f0", "physnet1:ens1f1", "physnet2:ens2f0"],
        ["physnet1:ens1f0,physnet1:ens1f1", "physnet2:ens2f0"],
        {"physnet1": ["ens1f0", "ens1f1"], "physnet2": "ens2f0"},
    ],
)
def test_physical_device_mappings_forms(mappings):
    config = load({"physical_device_mappings": mappings}, driver="sriov")
    assert config.physical_device_mappings == {
        "physnet1": ["ens1f0", "ens1f1"],
        "physnet2": ["ens2f0"],
    }


@pytest.mark.parametrize(
    "excluded",
    [
        "ens1f0:0000:07:00.2;0000:07:00.3,ens2f0:5",
        ["ens1f0:0000:07:00.2;0000:07:00.3", "ens2f0:5"],
        {"ens1f0": "0000:07:00.2;0000:07:00.3", "ens2f0": 5},
        {"ens1f0": ["0000:07:00.2", "0000:07:00.3", "0000:07:00.2"], "ens2f0": ["5"]},
        {"ens1f0": ["0000:07:00.2", "0000:07:00.3"], "ens2f0": [5]},
    ],
)
def test_exclude_devices_forms(excluded):
    mappings = {"physnet1": ["ens1f0"], "physnet2": ["ens2f0"]}
    config = load(
        {"physical_device_mappings": mappings, "exclude_devices": excluded}, driver="sriov"
    )
    assert config.exclude_devices == {"ens1f0": ["0000:07:00.2", "0000:07:00.3"], "ens2f0": [5]}


def test_without_mappings_any_pf_may_be_excluded():
    assert load({"exclude_devices": {"pf7": "0000:AB:1F.7"}}).exclude_devices == {
        "pf7": ["0000:ab:1f.7"]
    }


def test_an_unquoted_pci_address_in_the_file_stays_an_address(tmp_path):
    path = write(
        tmp_path,
        "physical_device_mappings: {physnet1: ens1f0}\n"
        "exclude_devices:\n  ens1f0: [0000:07:00.2, 0000:07:10.1, 3]\n",
    )
    assert yaml.safe_load(path.read_text())["exclude_devices"]["ens1f0"][0] == 420.2  # YAML 1.1
    config = AgentConfig.from_file(path, node="node1", driver="sriov")
    assert config.exclude_devices == {"ens1f0": ["0000:07:00.2", "0000:07:10.1", 3]}


def test_defaults_and_the_round_trip_to_the_worker_processes(tmp_path, monkeypatch):
    config = load({})
    assert (config.driver, config.sim_name, config.broker_url, config.concurrency) == (
        "sim",
        "sim",
        "redis://127.0.0.1:6379/0",
        2,
    )
    assert config.state_dir == str(tmp_path / "var" / "agent" / "node1")
    assert Path(config.state_dir).is_dir()
    mixed = load({**MAPPED, "exclude_devices": {"pf0": [6, "0000:21:00.1"]}}, driver="sriov")
    monkeypatch.setenv(ENV_VAR, mixed.to_env())
    assert AgentConfig.from_env() == mixed
    assert json.loads(mixed.to_env())["exclude_devices"] == {"pf0": [6, "0000:21:00.1"]}


def test_flags_win_over_the_file_and_the_file_over_redis_url(tmp_path):
    path = write(tmp_path, "broker_url: redis://file:6379/1\nconcurrency: 4\n")
    environment = {"broker_url": ("REDIS_URL", "redis://env:6379/2")}
    config = AgentConfig.from_file(path, environment=environment, node="node1", concurrency=None)
    assert (config.broker_url, config.concurrency) == ("redis://file:6379/1", 4)
    config = AgentConfig.from_file(
        path, environment=environment, node="node1", broker_url="redis://flag:6379/3"
    )
    assert config.broker_url == "redis://flag:6379/3"
    assert AgentConfig.load({}, environment=environment, overrides={"node": "n"}).broker_url == (
        "redis://env:6379/2"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: [1,\n", "line 2, column 1: not valid YAML"),
        ("- physnet1:ens1f0\n", "must be a mapping of keys to values, not a list"),
    ],
)
def test_a_file_that_is_no_mapping_is_refused_in_one_line(tmp_path, text, says):
    with pytest.raises(ConfigError) as refused:
        AgentConfig.from_file(write(tmp_path, text), node="node1")
    [line] = refused.value.problems
    assert line.startswith(f"{tmp_path / 'agent.yaml'}: ") and says in line


# --- the example and the reference ---------------------------------------------------------


def test_the_example_config_loads_and_has_every_key(tmp_path):
    keys = set(yaml.safe_load(EXAMPLE.read_text()))
    assert keys == set(AgentConfig.model_fields)
    config = AgentConfig.from_file(EXAMPLE, node="compute1", state_dir=str(tmp_path / "state"))
    assert config.driver == "sriov"
    assert config.exclude_devices == {"ens1f0": ["0000:07:00.2", "0000:07:00.3"], "ens2f0": [5]}
    assert config.physical_device_mappings == {
        "physnet1": ["ens1f0", "ens1f1"],
        "physnet2": ["ens2f0"],
    }


def test_every_key_is_in_the_reference():
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(), re.MULTILINE))
    assert set(AgentConfig.model_fields) <= documented


# --- the command line ------------------------------------------------------------------


def test_the_agent_exits_2_with_the_message_and_no_traceback(tmp_path):
    bad = write(
        tmp_path,
        "physical_device_mappings: {physnet1: ens1f0}\n"
        'exclude_devices: {ens1f0: ["0000:07:00.2", "0000:07:00"]}\n'
        "physical_device_mapings: {}\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "ciaoweb.agent", "--node", "node1", "--driver", "sriov"]
        + ["--config", str(bad), "--state-dir", str(tmp_path / "state")],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "CIAO_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"error: {bad}: exclude_devices.ens1f0[1]: '0000:07:00' is not a PCI address "
        "(expected DDDD:BB:DD.F)",
        f"error: {bad}: physical_device_mapings: unknown key "
        "(did you mean physical_device_mappings?)",
    ]
