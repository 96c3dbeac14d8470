"""Managed dnsmasq + udhcpc against real namespaces joined by a veth pair.

Everything created here is named ciao-t<pid>-* and removed in `finally`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ciaoweb.agent.dhcp.client import obtain_lease
from ciaoweb.agent.dhcp.server import (
    IPAM_CONTROLLER,
    IPAM_DYNAMIC,
    DhcpServer,
    DhcpServerSpec,
    Reservation,
)
from ciaoweb.agent.drivers.base import InvalidArgument, TransientError
from tests.prereqs import require

pytestmark = pytest.mark.sim

CIDR, SERVER_IP, GATEWAY = "10.77.0.0/24", "10.77.0.2", "10.77.0.1"
DOMAIN = "net1.ciao.test"
SERVER_IF, CLIENT_IF = "ciaos0", "ciaoc0"


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=20)


@dataclass
class Wire:
    server_ns: str
    client_ns: str
    state_dir: Path

    def server(self, ipam: str = IPAM_CONTROLLER, **kw: object) -> DhcpServer:
        fields: dict = dict(
            network_id="net1",
            netns=self.server_ns,
            interface=SERVER_IF,
            cidr=CIDR,
            gateway=GATEWAY,
            ipam=ipam,
            dns_domain=DOMAIN,
        )
        spec = DhcpServerSpec(**{**fields, **kw})
        return DhcpServer(spec, self.state_dir)

    def client_mac(self, mac: str) -> None:
        _run("ip", "-n", self.client_ns, "addr", "flush", "dev", CLIENT_IF)
        _run("ip", "-n", self.client_ns, "link", "set", CLIENT_IF, "address", mac)

    def lease(self, **kw: object):
        return obtain_lease(self.client_ns, CLIENT_IF, hook_dir=self.state_dir, **kw)

    def client_ips(self) -> list[str]:
        out = _run("ip", "-n", self.client_ns, "-4", "-o", "addr", "show", "dev", CLIENT_IF)
        return [line.split()[3].split("/")[0] for line in out.stdout.splitlines()]


@pytest.fixture
def wire(searchable_tmp) -> Iterator[Wire]:
    require(("ip", "dnsmasq", "busybox"), "DHCP tests")
    tag = f"ciao-t{os.getpid()}"
    made = Wire(f"{tag}-dhcps", f"{tag}-dhcpc", searchable_tmp / "state")
    servers: list[DhcpServer] = []
    try:
        for ns in (made.server_ns, made.client_ns):
            _run("ip", "netns", "add", ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run(
            "ip",
            "-n",
            made.server_ns,
            "link",
            "add",
            SERVER_IF,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT_IF,
            "netns",
            made.client_ns,
        )
        _run("ip", "-n", made.server_ns, "addr", "add", f"{SERVER_IP}/24", "dev", SERVER_IF)
        _run("ip", "-n", made.server_ns, "link", "set", SERVER_IF, "up")
        _run("ip", "-n", made.client_ns, "link", "set", CLIENT_IF, "up")
        made.started = servers  # type: ignore[attr-defined]
        yield made
    finally:
        for server in servers:
            server.stop()
        for ns in (made.server_ns, made.client_ns):
            _run("ip", "netns", "del", ns, check=False)


def _start(wire: Wire, server: DhcpServer) -> int:
    wire.started.append(server)  # type: ignore[attr-defined]
    return server.start()


def _wait_read(server: DhcpServer, path: Path, timeout: float = 10.0) -> None:
    """Until dnsmasq's log says it read `path` (its inotify watch on the hosts dir)."""
    deadline = time.monotonic() + timeout
    while f"read {path}" not in server.log_file.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"dnsmasq never read {path}: {server.log_file.read_text()}")
        time.sleep(0.02)


def _wait_events(server: DhcpServer, reader, want, timeout: float = 5.0) -> list:
    seen: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += reader.read_new()
        if want(seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"lease events not seen; got {seen}")


def test_reservation_dora_and_late_reservation_without_restart(wire):
    server = wire.server(IPAM_CONTROLLER)
    server.add_reservation(Reservation("02:00:00:00:00:11", "10.77.0.11", "alpha"))
    pid = _start(wire, server)

    wire.client_mac("02:00:00:00:00:11")
    lease = wire.lease()
    assert (lease.ip, lease.prefixlen, lease.router) == ("10.77.0.11", 24, GATEWAY)
    assert wire.client_ips() == ["10.77.0.11"]

    # A MAC without a reservation gets nothing from a controller-IPAM network ...
    wire.client_mac("02:00:00:00:00:12")
    with pytest.raises(TransientError):
        wire.lease(tries=2)
    # ... until its reservation is written: inotify, same process.
    server.add_reservation(Reservation("02:00:00:00:00:12", "10.77.0.12", "beta"))
    _wait_read(server, server.hosts_dir / "02-00-00-00-00-12")
    assert wire.lease().ip == "10.77.0.12"
    assert server.pid() == pid


def test_lease_events_add_and_del(wire):
    server = wire.server(IPAM_DYNAMIC)
    _start(wire, server)
    reader = server.events()
    wire.client_mac("02:00:00:00:00:21")
    lease = wire.lease(hostname="gamma")
    added = _wait_events(server, reader, lambda ev: any(e.action == "add" for e in ev))
    add = next(e for e in added if e.action == "add")
    assert (add.mac, add.ip, add.hostname) == ("02:00:00:00:00:21", lease.ip, "gamma")
    assert add.expires and add.expires > time.time()
    lo, hi = server.spec.dynamic_range()
    assert lo <= __import__("ipaddress").IPv4Address(lease.ip) <= hi

    # A DHCPRELEASE from the client ends the lease: a running `udhcpc -R` sends one
    # when terminated (the hook is /bin/true so nothing races the unicast release).
    client = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            wire.client_ns,
            shutil.which("busybox") or "busybox",
            "udhcpc",
            "-f",
            "-n",
            "-R",
            "-i",
            CLIENT_IF,
            "-t",
            "3",
            "-T",
            "1",
            "-s",
            "/bin/true",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_events(server, reader, lambda ev: any(e.action == "old" for e in ev))
    finally:
        client.terminate()
        client.wait(timeout=5)
    dels = _wait_events(server, reader, lambda ev: any(e.action == "del" for e in ev))
    assert any(e.action == "del" and e.mac == "02:00:00:00:00:21" for e in dels)


def test_killed_dnsmasq_is_restarted_and_the_client_keeps_its_ip(wire):
    server = wire.server(IPAM_DYNAMIC)
    pid = _start(wire, server)
    wire.client_mac("02:00:00:00:00:31")
    first = wire.lease()
    assert server.ensure_running() is False

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 3
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.ensure_running() is True
    assert server.pid() not in (None, pid)
    assert wire.lease().ip == first.ip  # from the lease file, not a reservation


def test_hostname_resolves_through_the_network_dns(wire):
    server = wire.server(IPAM_CONTROLLER)
    server.add_reservation(Reservation("02:00:00:00:00:41", "10.77.0.41", "delta"))
    _start(wire, server)
    wire.client_mac("02:00:00:00:00:41")
    wire.lease()
    out = _run(
        "ip",
        "netns",
        "exec",
        wire.client_ns,
        shutil.which("busybox") or "busybox",
        "nslookup",
        f"delta.{DOMAIN}",
        SERVER_IP,
    )
    assert "10.77.0.41" in out.stdout


def test_removed_reservation_is_dropped_without_restart(wire):
    server = wire.server(IPAM_CONTROLLER)
    server.set_reservations([Reservation("02:00:00:00:00:51", "10.77.0.51", "eps")])
    pid = _start(wire, server)
    server.set_reservations([])
    wire.client_mac("02:00:00:00:00:51")
    with pytest.raises(TransientError):
        wire.lease(tries=2)
    assert server.pid() == pid


def test_removed_reservation_releases_its_lease_so_the_address_can_be_reused(wire):
    """A deleted instance's client never releases its lease (its VF was reset): the
    server releases it when the reservation goes, or dnsmasq would refuse the address to
    the next MAC the controller reserves it for until the lease expired."""
    server = wire.server(IPAM_CONTROLLER)
    server.set_reservations([Reservation("02:00:00:00:00:71", "10.77.0.71", "old")])
    _start(wire, server)
    reader = server.events()
    wire.client_mac("02:00:00:00:00:71")
    assert wire.lease().ip == "10.77.0.71"
    _wait_events(server, reader, lambda ev: any(e.action == "add" for e in ev))

    server.set_reservations([Reservation("02:00:00:00:00:72", "10.77.0.71", "new")])
    dels = _wait_events(server, reader, lambda ev: any(e.action == "del" for e in ev))
    released = [(e.mac, e.ip) for e in dels if e.action == "del"]
    assert released == [("02:00:00:00:00:71", "10.77.0.71")]
    assert server.leases() == []
    wire.client_mac("02:00:00:00:00:72")
    assert wire.lease(tries=3).ip == "10.77.0.71"


def test_values_are_validated_before_any_command_line(wire):
    with pytest.raises(InvalidArgument):
        wire.server(IPAM_CONTROLLER, dns_domain="evil.test --conf-file=/etc/passwd")
    server = wire.server(IPAM_CONTROLLER)
    for bad in [
        Reservation("02:00:00:00:00:61", "10.77.1.5", "x"),  # outside the CIDR
        Reservation("02:00:00:00:00:61", "10.77.0.5", "bad,name"),
        Reservation("01:00:5e:00:00:01", "10.77.0.5", "mcast"),
        Reservation("02:00:00:00:00:61\n--dhcp-script=/x", "10.77.0.5", "nl"),
    ]:
        with pytest.raises(InvalidArgument):
            server.add_reservation(bad)
    assert server.reservations() == {}


def test_a_server_known_only_by_its_directory_can_be_removed(wire):
    """A deleted network's server has no spec any more: it is found by its directory."""
    server = wire.server(IPAM_CONTROLLER)
    pid = _start(wire, server)
    found = DhcpServer.on_disk(server.dir.parent, server.dir.name.removeprefix("dhcp-"))
    assert found.pid() == pid
    found.remove()
    assert server.pid() is None and not server.dir.exists()


def _status_ids(pid: int, field: str) -> set[int]:
    line = next(
        x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field)
    )
    return {int(v) for v in line.split()[1:]}


def test_dnsmasq_drops_root_and_cannot_touch_what_root_runs(wire):
    """dnsmasq serves as ciao-dnsmasq (real, effective, saved and fs ids), and still
    leases; the hook its root helper runs, and its directory, are root's and 0755."""
    import pwd

    from ciaoweb.agent.dhcp.server import DNSMASQ_USER

    user = pwd.getpwnam(DNSMASQ_USER)
    server = wire.server(IPAM_DYNAMIC)
    pid = _start(wire, server)
    assert _status_ids(pid, "Uid:") == {user.pw_uid}
    assert _status_ids(pid, "Gid:") == {user.pw_gid}
    wire.client_mac("02:00:00:00:00:31")
    assert wire.lease().ip.startswith("10.77.0.")
    for path in (server.dir, server.hook, server.hosts_dir):
        st = path.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o755), path
    # The hook names the agent's own interpreter, isolated from the environment.
    assert server.hook.read_text().splitlines()[0] == f"#!{sys.executable} -IS"
    # What stays root's: the lease file (opened before the drop) and the events the root
    # helper appends; the user cannot write either.
    for path in (server.lease_file, server.events_file):
        st = path.stat()
        assert st.st_uid == 0 and not st.st_mode & 0o022, path


def test_a_controller_network_ignores_every_mac_it_has_no_reservation_for(wire):
    """A client under a random MAC (busybox udhcpc) gets no offer, and dnsmasq does not
    even answer it: `--dhcp-ignore=tag:!known` drops its packets, so no NAK, no release
    or decline acted on for a MAC the controller never reserved."""
    import random

    server = wire.server(IPAM_CONTROLLER)
    server.set_reservations([Reservation("02:00:00:00:00:81", "10.77.0.81", "known")])
    _start(wire, server)
    stranger = "02:" + ":".join(f"{random.randrange(256):02x}" for _ in range(5))
    wire.client_mac(stranger)
    with pytest.raises(TransientError):
        wire.lease(tries=2, request_ip="10.77.0.81")  # even asking for a reserved address
    assert wire.client_ips() == []
    log = server.log_file.read_text()
    assert f"{stranger} ignored" in log or f"{stranger}: ignored" in log, log[-2000:]
    assert "DHCPOFFER" not in log and "DHCPNAK" not in log
    wire.client_mac("02:00:00:00:00:81")  # the reserved MAC is still served
    assert wire.lease().ip == "10.77.0.81"
