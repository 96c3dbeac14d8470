"""A real node's container namespaces (NetnsRuntime): idempotent, safe against a
concurrent creator (a watchdog's re-send in another worker process), loopback up."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from ciaoweb.agent.names import instance_netns
from ciaoweb.agent.runtime import NetnsRuntime

pytestmark = pytest.mark.sim


@pytest.fixture
def name():
    made = f"rt{os.getpid()}"
    yield made
    NetnsRuntime().delete(made)


def _lo_up(netns: str) -> bool:
    shown = subprocess.run(
        ["ip", "-n", netns, "-j", "link", "show", "lo"], capture_output=True, text=True, check=True
    )
    return "UP" in json.loads(shown.stdout)[0]["flags"]


def test_create_is_idempotent_and_brings_loopback_up(name):
    runtime = NetnsRuntime()
    netns = runtime.create(name, "container")
    assert netns == instance_netns(name) and _lo_up(netns)
    assert runtime.create(name, "container") == netns
    runtime.delete(name)
    runtime.delete(name)  # gone already: fine
    assert not os.path.exists(f"/run/netns/{netns}")


def test_concurrent_creators_both_succeed(name):
    runtime = NetnsRuntime()
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: runtime.create(name, "container"), range(8)))
    assert set(made) == {instance_netns(name)} and _lo_up(made[0])


def test_a_failed_create_says_why():
    with pytest.raises(subprocess.CalledProcessError) as failed:
        NetnsRuntime().create("bad/name", "container")  # ip refuses a "/" in a name
    assert failed.value.stderr.strip()
