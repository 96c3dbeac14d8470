"""Simulator tests: root, real namespaces, real packets.

Prerequisites (root, ip, tc, nft, dnsmasq, udhcpc): missing ones skip the tests,
or FAIL them when ``CIAO_REQUIRE_SIM=1`` (CI).  Every test builds its own
simulator with a unique name (``t<pid><n>``) under a temporary ``CIAO_SIM_DIR``
and tears down only that one.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulator import Simulator, Topology
from tests.prereqs import require

from .helpers import leftovers

REQUIRED_TOOLS = ("ip", "tc", "nft", "dnsmasq", "udhcpc", "ping")
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _require_sim(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("sim") is None:
        return
    require(REQUIRED_TOOLS, "simulator tests")


@pytest.fixture
def sim_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private CIAO_SIM_DIR (also seen by CLI subprocesses)."""
    d = tmp_path / "sim"
    d.mkdir()
    monkeypatch.setenv("CIAO_SIM_DIR", str(d))
    return d


@pytest.fixture
def sim_name() -> str:
    return f"t{os.getpid()}{next(_counter)}"


@pytest.fixture
def make_sim(sim_dir: Path) -> Iterator[Callable[..., Simulator]]:
    """``make_sim(**Topology.from_flags kwargs)``: built now, torn down after the test,
    and checked to leave nothing behind."""
    built: list[Simulator] = []

    def factory(**flags) -> Simulator:
        name = f"t{os.getpid()}{next(_counter)}"
        sim = Simulator.up(Topology.from_flags(**flags), name=name, base_dir=sim_dir)
        built.append(sim)
        return sim

    yield factory
    for sim in reversed(built):
        sim.down()
        assert leftovers(sim.name, sim.state_dir) == {}
