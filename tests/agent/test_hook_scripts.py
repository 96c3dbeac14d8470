"""Our hook scripts as udhcpc and dnsmasq run them: one file each, `python -IS`, three
runs for every container lease. What they print or append is what `json` would have
written, and they import no module that costs a start its milliseconds (no wall-clock:
the modules Python loaded are the measure)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ciaoweb.agent.dhcp.hook_json import to_json
from ciaoweb.agent.dhcp.hooks import STDLIB_ONLY, hook_source

# Each adds 5-15 ms of CPU to a start (`json` pulls in `re`, `subprocess` selectors and
# threading, `socket` enum): `python -IS -c pass` itself is about 10 ms here.
COSTLY = {"json", "re", "subprocess", "socket", "selectors", "threading", "enum"}


@pytest.mark.parametrize(
    "value",
    [
        {"ip": "10.0.0.5", "dns": ["10.0.0.1", "10.0.0.2"], "lease": 3600, "domain": None},
        {"hostname": 'q"uo\\te\nnew\u00e9line\u2028', "expires": 1700000000, "time": 1.5e9 + 0.25},
        {"empty": [], "flag": True, "off": False, "nested": {"b": 1, "a": [None]}},
    ],
)
def test_hook_json_is_what_json_writes(value):
    assert to_json(value) == json.dumps(value, sort_keys=True)
    assert json.loads(to_json(value)) == value


def _installed(tmp_path, name: str):
    hook = tmp_path / name
    hook.write_text(hook_source(name))
    return hook


def _imported(run: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run with `-X importtime`: every module the start imported is named on stderr."""
    done = subprocess.run(
        [sys.executable, STDLIB_ONLY, "-X", "importtime", *run],
        capture_output=True,
        text=True,
        **kwargs,
    )
    modules = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return done, modules


def test_the_udhcpc_hook_prints_the_lease_and_imports_nothing_costly(tmp_path):
    hook = _installed(tmp_path, "udhcpc_hook")
    env = {"interface": "eth1", "ip": "10.0.0.9", "mask": "24", "dns": "10.0.0.1 10.0.0.2"}
    env |= {"domain": 'ex"ample', "lease": "3600", "serverid": "10.0.0.254", "router": ""}
    # `leasefail` configures nothing, so it runs outside a namespace too
    done, modules = _imported([str(hook), "leasefail"], env=env)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("CIAO_LEASE "))
    assert json.loads(line[len("CIAO_LEASE ") :]) == {
        "event": "leasefail",
        "interface": "eth1",
        "ip": "10.0.0.9",
        "prefixlen": 24,
        "router": None,
        "dns": ["10.0.0.1", "10.0.0.2"],
        "domain": 'ex"ample',
        "lease": 3600,
        "server": "10.0.0.254",
    }
    assert modules & COSTLY == set()


def test_a_failed_ip_command_fails_the_udhcpc_hook(tmp_path):
    """`deconfig` on an interface that does not exist: udhcpc must see the hook fail."""
    hook = _installed(tmp_path, "udhcpc_hook")
    done = subprocess.run(
        [sys.executable, STDLIB_ONLY, str(hook), "deconfig"],
        capture_output=True,
        text=True,
        env={"interface": "ciaonosuch0"},
    )
    assert done.returncode != 0
    assert "exit status" in done.stderr


def test_the_lease_hook_appends_the_event_and_imports_nothing_costly(tmp_path):
    hook = _installed(tmp_path, "lease_hook")
    env = {"DNSMASQ_LEASE_EXPIRES": "1700000000", "DNSMASQ_INTERFACE": "eth0"}
    done, modules = _imported(
        [str(hook), "add", "02:AA:00:00:00:01", "10.0.0.7", 'we"ird'], env=env
    )
    assert done.returncode == 0, done.stderr
    (line,) = (tmp_path / "events.jsonl").read_text().splitlines()
    event = json.loads(line)
    assert {k: v for k, v in event.items() if k != "time"} == {
        "action": "add",
        "mac": "02:aa:00:00:00:01",
        "ip": "10.0.0.7",
        "hostname": 'we"ird',
        "expires": 1700000000,
        "interface": "eth0",
    }
    assert isinstance(event["time"], float)
    assert modules & COSTLY == set()
