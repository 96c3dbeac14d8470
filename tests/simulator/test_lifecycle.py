"""`up`/`status`/`down`/`clean` leave nothing behind, even after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import Simulator

from .helpers import attach, leftovers, wait_for

pytestmark = pytest.mark.sim

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


def test_cli_up_status_down_leaves_nothing(sim_dir: Path, sim_name: str):
    state_dir = sim_dir / sim_name
    try:
        up = cli(
            "up",
            "--name",
            sim_name,
            "--hosts",
            "2",
            "--pfs",
            "2",
            "--vfs",
            "3",
            "--physnet",
            "physnet1",
            "--physnet",
            "physnet2",
            "--network-node",
            "--underlay",
            "physnet2:0:10.40.0.0/24",
        )
        assert "host 3/3" in up.stderr  # progress
        status = json.loads(cli("status", "--name", sim_name, "--json").stdout)
        assert status["status"] == "up"
        for ns in status["namespaces"]:
            assert ns.startswith(f"ciao-{sim_name}-")
            assert os.path.exists(f"/run/netns/{ns}")
        assert status["hosts"]["node2"]["mgmt_ip"] == "10.250.0.2"
        assert status["hosts"]["netnode"]["network_node"] is True
        assert len(status["hosts"]["node1"]["pfs"]["pf1"]["vfs"]) == 3
        text = cli("status", "--name", sim_name).stdout
        assert "pf1v2" in text and "10.250.0.1" in text
        # a VM guest (daemon + its udhcpc) must be stopped by `down` too
        sim = Simulator.load(sim_name)
        ns = sim.create_instance("node1", "vm1", "vm")
        sim.set_vf("node1", "pf1", 0, mac="52:54:00:00:04:00")
        sim.plug_vf("node1", "pf1", 0, ns, "eth0")
        assert wait_for(lambda: sim.underlay_leases("physnet2", 0), timeout=15)
        assert cli("up", "--name", sim_name, check=False).returncode == 1  # exists
        cli("down", "--name", sim_name)
        assert leftovers(sim_name, state_dir) == {}
    finally:
        cli("clean", "--name", sim_name, check=False)


def test_kill9_of_up_midway_then_clean(sim_dir: Path, sim_name: str):
    state_dir = sim_dir / sim_name
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "up",
            "--name",
            sim_name,
            "--hosts",
            "12",
            "--vfs",
            "64",
            "-q",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # wait until it is building (some namespaces exist), then kill it hard
        assert wait_for(
            lambda: len(os.listdir("/run/netns"))
            and any(n.startswith(f"ciao-{sim_name}-node") for n in os.listdir("/run/netns")),
            timeout=30,
            interval=0.005,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert leftovers(sim_name, state_dir)  # it did leave something
        out = cli("clean", "--name", sim_name).stdout
        assert "namespaces" in out
        assert leftovers(sim_name, state_dir) == {}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cli("clean", "--name", sim_name, check=False)


def _dead(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet: either way it runs no more."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_kill9_of_guest_then_clean(sim_dir: Path, sim_name: str):
    state_dir = sim_dir / sim_name
    cli(
        "up",
        "--name",
        sim_name,
        "--hosts",
        "1",
        "--vfs",
        "1",
        "--underlay",
        "physnet1:0:10.41.0.0/24",
        "-q",
    )
    try:
        sim = Simulator.load(sim_name)
        ns = sim.create_instance("node1", "g", "vm")
        sim.plug_vf("node1", "pf0", 0, ns, "eth0")
        assert wait_for(lambda: sim.underlay_leases("physnet1", 0), timeout=15)
        guest = sim.instances()[0]["guest_pid"]
        os.kill(guest, signal.SIGKILL)  # its udhcpc is orphaned
        assert wait_for(lambda: _dead(guest), timeout=10), f"guest {guest} survived SIGKILL"
        assert leftovers(sim_name, state_dir).get("processes")
        cli("clean", "--name", sim_name)
        assert leftovers(sim_name, state_dir) == {}
    finally:
        cli("clean", "--name", sim_name, check=False)


def test_a_stopped_guest_stops_its_dhcp_client_itself(make_sim):
    """`guest.stop` sends SIGTERM and waits its grace: the guest must wake for it, not
    sleep out a long wait for netlink events, be killed, and leave its udhcpc behind."""
    from simulator import guest
    from simulator.instances import Instance

    sim = make_sim(hosts=1, vfs=1)
    attach(sim, "node1", "pf0", 0, "vm1", mac="52:54:00:00:04:00", vlan=0, kind="vm")
    vm = Instance(sim.name, "vm1", sim.state_dir)
    client = vm.state_dir / "pids" / "udhcpc-vm1-eth0.pid"
    assert wait_for(lambda: client.exists() and client.read_text().strip(), timeout=15)
    udhcpc = int(client.read_text())
    guest.stop(vm.guest_pidfile)
    assert _dead(udhcpc), "the guest was killed before it stopped its DHCP client"


def test_guest_hook_is_installed_while_a_guest_runs_it(tmp_path):
    """Concurrent VM launches share the hook file: installing it while another guest
    executes it must not fail with ETXTBSY (an in-place rewrite did)."""
    import shutil
    import subprocess

    from simulator import guest

    path = tmp_path / "guest-dhcp-hook.sh"
    shutil.copy("/bin/sleep", path)
    running = subprocess.Popen([str(path), "30"])
    try:
        guest.write_hook(path)
        assert path.read_text() == guest.HOOK
        inode = path.stat().st_ino
        guest.write_hook(path)
        assert path.stat().st_ino == inode  # unchanged content: left alone
    finally:
        running.kill()
        running.wait()
