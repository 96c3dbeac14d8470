"""A network node's DHCP servers (agent/cnci.py) on the simulator: a refresh while the
server runs only rewrites reservations; anything else brings the whole server back."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ciaoweb.agent.cnci import DhcpServers
from ciaoweb.agent.dhcp import guard
from ciaoweb.agent.dhcp.server import DhcpServer
from ciaoweb.agent.overlay import Overlay
from ciaoweb.agent.runtime import SimRuntime

from .rigs import open_sim_rig

pytestmark = pytest.mark.sim

NETWORK_ID = "0f0e0d0c0b0a09080706050403020100"


class CountingDriver:
    """The real sim driver; counts how often the server's VF is set up."""

    def __init__(self, driver) -> None:
        self._driver = driver
        self.setups = 0

    def setup_vf(self, *args, **kwargs):
        self.setups += 1
        return self._driver.setup_vf(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._driver, name)


@pytest.fixture
def servers(tmp_path, searchable_tmp):
    with open_sim_rig(tmp_path) as rig:
        runtime = SimRuntime(rig.sim, "node1")
        driver = CountingDriver(rig.driver())
        made = DhcpServers(
            str(searchable_tmp / "agent"), driver, runtime, Overlay(runtime.host_netns, None)
        )
        yield made, driver
        made.remove(_spec())


def _spec(reservations: int = 1, vlan: int = 120, **identity) -> dict:
    return identity | {
        "network_id": NETWORK_ID,
        "cidr": "10.91.0.0/24",
        "gateway": "10.91.0.1",
        "server_ip": "10.91.0.254",
        "ipam": "controller",
        "dns_domain": "refresh.example",
        "vlan": vlan,
        "mtu": None,
        "mac": "02:aa:00:00:00:01",
        "vf": {"id": "vf", "pf": "pf0", "index": 0, "pci_address": ""},
        "overlay": None,
        "reservations": [
            {"mac": f"02:bb:00:00:00:{n:02x}", "ip": f"10.91.0.{10 + n}", "hostname": f"i{n}"}
            for n in range(reservations)
        ],
    }


def _launch(n: int) -> dict:
    """The step of launch `n` that sent the refresh, as the controller tags it."""
    return {"operation_id": f"op{n}", "step": "dhcp"}


def test_refresh_of_a_running_server_only_writes_reservations(servers):
    made, driver = servers
    assert made.ensure(_spec(1, revision=1, context=_launch(1)))["ok"]
    assert driver.setups == 1
    # Each launch's refresh has its own step and a newer revision: still only a refresh.
    outcome = made.ensure(_spec(3, revision=2, context=_launch(2)))
    assert outcome["ok"] and not outcome["restarted"]
    assert driver.setups == 1  # VF, address and dnsmasq left as they were
    server = DhcpServer.on_disk(made.state_dir, NETWORK_ID)
    assert sorted(server.reservations()) == [f"02:bb:00:00:00:{n:02x}" for n in range(3)]
    assert made.ensure(_spec(2, revision=3, context=_launch(3)))["ok"]
    assert len(server.reservations()) == 2
    assert driver.setups == 1


def test_reservations_older_than_the_applied_ones_are_skipped(servers):
    """Specs can arrive out of order (two worker processes; a reconcile computed before a
    launch committed, applied after it): the older one must not drop the newer one's
    reservation, which would leave that instance without DHCP."""
    made, _ = servers
    assert made.ensure(_spec(2, server_id="s1", revision=5))["ok"]
    server = DhcpServer.on_disk(made.state_dir, NETWORK_ID)
    late = made.ensure(_spec(1, server_id="s1", revision=4))
    assert late["ok"] and late.get("superseded")
    assert len(server.reservations()) == 2
    assert made.ensure(_spec(1, server_id="s1", revision=4), full=True).get("superseded")
    assert len(server.reservations()) == 2
    assert made.ensure(_spec(3, server_id="s1", revision=5))["ok"]  # a re-send: applied
    assert len(server.reservations()) == 3
    # A re-placed server (new id) counts from 1 again.
    assert not made.ensure(_spec(1, server_id="s2", revision=1)).get("superseded")
    assert len(server.reservations()) == 1


def _mac(n: int) -> str:
    return f"02:bb:00:00:00:{n:02x}"


def _partial(macs: list[int], listed: list[int], revision: int, server_id: str = "s1") -> dict:
    """A launch's or a deletion's refresh: `macs` changed, of which `listed` are reserved
    (the others removed); every other reservation of the server stays as it is."""
    spec = _spec(max(listed, default=-1) + 1, server_id=server_id, revision=revision)
    spec["reservations"] = [r for r in spec["reservations"] if int(r["mac"][-2:], 16) in listed]
    return spec | {"partial": [_mac(n) for n in macs], "context": _launch(revision)}


def test_a_partial_refresh_changes_only_the_macs_it_names(servers):
    made, _ = servers
    assert made.ensure(_spec(3, server_id="s1", revision=1))["ok"]
    server = DhcpServer.on_disk(made.state_dir, NETWORK_ID)
    before = server.reservations()
    assert made.ensure(_partial([5], [5], revision=2))["ok"]  # a launch
    assert server.reservations() == before | {_mac(5): f"{_mac(5)},10.91.0.15,i5"}
    assert made.ensure(_partial([1], [], revision=3))["ok"]  # a deletion
    assert sorted(server.reservations()) == [_mac(0), _mac(2), _mac(5)]


def test_a_partial_refresh_never_undoes_a_newer_one(servers):
    """Two worker processes, or a resend: a launch's refresh applied after the deletion's
    that followed it must not bring the deleted reservation back, and a full list built
    before a launch must not drop that launch's reservation."""
    made, _ = servers
    assert made.ensure(_spec(1, server_id="s1", revision=1))["ok"]
    server = DhcpServer.on_disk(made.state_dir, NETWORK_ID)
    assert made.ensure(_partial([4], [], revision=6))["ok"]  # the deletion, first
    assert made.ensure(_partial([4], [4], revision=5))["ok"]  # its launch, late
    assert _mac(4) not in server.reservations()
    assert made.ensure(_partial([7], [7], revision=7))["ok"]  # a launch
    late_plan = _spec(2, server_id="s1", revision=6)  # read before that launch committed
    assert made.ensure(late_plan, full=True)["ok"]
    assert sorted(server.reservations()) == [_mac(0), _mac(1), _mac(7)]
    assert made.ensure(_spec(1, server_id="s1", revision=8), full=True)["ok"]  # newer: exact
    assert sorted(server.reservations()) == [_mac(0)]
    assert made.ensure(_partial([3], [3], revision=7)).get("superseded")


def test_a_partial_refresh_without_the_whole_list_asks_for_it(servers):
    """A node that lost its state, or a server placed anew (another id), has no list for
    a partial refresh to build on: it asks for the whole list, and changes nothing."""
    made, _ = servers
    outcome = made.ensure(_partial([1], [1], revision=3))
    assert not outcome["ok"] and outcome["needs_full"]
    assert made.ensure(_spec(2, server_id="s1", revision=4))["ok"]
    outcome = made.ensure(_partial([5], [5], revision=5, server_id="s2"))  # re-placed
    assert outcome.get("needs_full")
    assert sorted(DhcpServer.on_disk(made.state_dir, NETWORK_ID).reservations()) == [
        _mac(0),
        _mac(1),
    ]


def test_dead_server_changed_spec_or_reconcile_redo_everything(servers):
    made, driver = servers
    assert made.ensure(_spec())["ok"]
    made.ensure(_spec(), full=True)  # what reconcile does
    assert driver.setups == 2
    made.ensure(_spec(vlan=121))  # the network's VLAN changed
    assert driver.setups == 3
    server = DhcpServer.on_disk(made.state_dir, NETWORK_ID)
    os.kill(server.pid(), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.01)  # SIGKILL lands asynchronously
    outcome = made.ensure(_spec(vlan=121))
    assert outcome["ok"] and outcome["restarted"]
    assert driver.setups == 4
    assert server.is_running()


def test_a_changed_spec_reaches_the_running_dnsmasq(servers):
    """The network's domain, CIDR or IPAM changed: dnsmasq is restarted on the new command
    line (its leases kept in the lease file), the old address leaves the interface; the
    same spec again, even in full (reconcile), leaves dnsmasq as it was."""
    made, _ = servers
    assert made.ensure(_spec())["ok"]
    server = DhcpServer.on_disk(made.state_dir, NETWORK_ID)
    pid = server.pid()
    outcome = made.ensure(_spec(), full=True)
    assert outcome["ok"] and not outcome["reconfigured"] and server.pid() == pid

    changed = {**_spec(), "dns_domain": "renamed.example", "cidr": "10.92.0.0/24"}
    changed.update(gateway="10.92.0.1", server_ip="10.92.0.254", reservations=[])
    outcome = made.ensure(changed)
    assert outcome["ok"] and outcome["reconfigured"] and not outcome["restarted"]
    assert server.pid() not in (None, pid)
    argv = Path(f"/proc/{server.pid()}/cmdline").read_bytes().split(b"\0")
    assert b"--domain=renamed.example" in argv
    assert b"--dhcp-range=10.92.0.0,static,255.255.255.0,3600" in argv
    shown = subprocess.run(
        ["ip", "-n", outcome["netns"], "-4", "-o", "addr", "show", "dev", "eth0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "10.92.0.254/24" in shown and "10.91.0.254" not in shown

    corrections = made.reconcile([{**changed, "ipam": "dynamic"}])
    assert [c["kind"] for c in corrections] == ["dhcp.reconfigured"]
    argv = Path(f"/proc/{server.pid()}/cmdline").read_bytes().split(b"\0")
    assert b"--dhcp-ignore=tag:!known" not in argv


def test_a_reconcile_plan_leaves_servers_changed_since_it_was_made(servers):
    """A plan is what the controller wanted when it answered a registration; the
    controller's ensure and remove since then are newer. Both races happened (the bench,
    a reconcile every 5 s while networks came and went): a new network's server stopped as
    an orphan, its first launch left without a lease; a deleted network's server set up
    again, holding the VF that a new network's server had been given."""
    made, _ = servers
    server = DhcpServer.on_disk(made.state_dir, NETWORK_ID)
    registered_at = time.time()  # the agent registers; the controller answers later
    assert made.ensure(_spec())["ok"]  # meanwhile a new network's first launch
    assert made.reconcile([], registered_at) == []
    assert server.is_running()

    registered_at = time.time()  # the network is deleted after this registration
    made.remove(_spec())
    assert made.reconcile([_spec()], registered_at) == []
    assert not server.dir.exists()

    assert made.ensure(_spec())["ok"]
    registered_at = time.time()  # gone by the next registration: an orphan now
    corrections = made.reconcile([], registered_at)
    assert [c["kind"] for c in corrections] == ["dhcp.orphan_stopped"]
    assert not server.is_running()
    # A plan older than the one applied (two worker processes) changes nothing.
    assert made.reconcile([_spec()], registered_at - 1) == []
    assert not server.is_running()
    assert [c["kind"] for c in made.reconcile([_spec()], time.time())] == ["dhcp.restarted"]


def test_a_full_set_up_keeps_the_loaded_chaddr_guard(servers):
    """Reconcile redoes the set-up; the guard already there (same rules) stays loaded,
    with what it has learnt and counted: reloading it zeroed its drop counter (seen in
    CI: the forged-chaddr e2e test read 0 drops after a reconcile pass)."""
    made, _ = servers
    netns = made.ensure(_spec())["netns"]
    learnt = "0x02cc00000001 . 0x02cc00000001"  # raw payload: integers
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "add", "element", "inet", guard.TABLE, "own_mac"]
        + ["{", learnt, "}"],
        check=True,
        capture_output=True,
    )
    assert made.ensure(_spec(), full=True)["ok"]
    assert "0x2cc00000001" in _guard_table(netns)

    guard.install(netns, "eth1")  # other rules (another interface) replace it
    table = _guard_table(netns)
    assert "0x2cc00000001" not in table and 'iifname "eth1"' in table


def _guard_table(netns: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "list", "table", "inet", guard.TABLE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
