"""A managed dnsmasq per network: DHCP (static reservations or a range) and DNS.

Everything of one server lives in its own directory::

    <state_dir>/dhcp-<network_id>/
        dnsmasq.pid  leases  dnsmasq.log  events.jsonl  lease_hook (our script)
        hosts.d/<mac>          one dhcp-host line per reservation, read by inotify

dnsmasq daemonises (so a dead agent leaves no zombie and start-up errors come back
synchronously as its exit status); we find it again through its pid file and check
the pid still belongs to *this* server before signalling it.

dnsmasq parses every tenant's DHCP and DNS packets, so it does not keep root: it binds
its sockets in the namespace as root, then runs as `ciao-dnsmasq` (made by
scripts/bootstrap.sh), keeping only the capabilities it asks for itself. It opened the
lease file as root before that, so the only files it can write afterwards are the pid
file and log it chowns itself. Its lease-change script runs in the helper dnsmasq forks
before the drop, as root: the hook is root's, in this root-owned 0755 directory, with
the agent's own interpreter (hooks.py checks both are where nobody else can write).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import pwd
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..drivers.base import DriverError, InvalidArgument
from . import validate
from .events import LeaseEventReader
from .hooks import STDLIB_ONLY, UntrustedPath, install_hook

log = logging.getLogger(__name__)

IPAM_CONTROLLER = "controller"  # reservations only: dnsmasq serves no one else
IPAM_DYNAMIC = "dynamic"  # a range; reservations still honoured
IPAM_MODES = (IPAM_CONTROLLER, IPAM_DYNAMIC)
IPV6_SLAAC, IPV6_DHCPV6 = "slaac", "dhcpv6"
IPV6_MODES = (IPV6_SLAAC, IPV6_DHCPV6)
# The unprivileged user (and group) dnsmasq runs as once its sockets are bound.
DNSMASQ_USER = "ciao-dnsmasq"


def dnsmasq_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(DNSMASQ_USER)
    except KeyError:
        raise DriverError(
            f"user {DNSMASQ_USER} is missing: run scripts/bootstrap.sh as root (useradd "
            f"--system --user-group --no-create-home --shell /usr/sbin/nologin {DNSMASQ_USER})"
        ) from None


@dataclass(frozen=True)
class Reservation:
    """One client of the server: its MAC, the IPv4 it is given (None on a dynamic network,
    where the range gives it) and, on a dual-stack network, its IPv6 address."""

    mac: str
    ip: str | None
    hostname: str | None = None
    ipv6: str | None = None

    def line(self, net: ipaddress.IPv4Network, net6: ipaddress.IPv6Network | None = None) -> str:
        """A dhcp-host line; every field validated so none can add another field. `net6`:
        the DHCPv6 prefix (ipv6_mode=dhcpv6), whose reservation rides on the same line,
        matched by the MAC too (dnsmasq reads it from the client's DUID-LL, or its
        neighbour table for any DUID of a directly connected client)."""
        fields = [validate.mac(self.mac)]
        if self.ip:
            fields.append(str(validate.host_ip(self.ip, net)))
        if net6 is not None and self.ipv6:
            fields.append(f"[{validate.ipv6_host(self.ipv6, net6)}]")
        if self.hostname:
            fields.append(validate.hostname(self.hostname))
        return ",".join(fields) + "\n"

    def aaaa(self, net6: ipaddress.IPv6Network) -> str | None:
        """A hosts-file line giving the name its AAAA record (either IPv6 mode), or None."""
        if not (self.ipv6 and self.hostname):
            return None
        return f"{validate.ipv6_host(self.ipv6, net6)} {validate.hostname(self.hostname)}\n"


@dataclass(frozen=True)
class DhcpServerSpec:
    network_id: str
    netns: str
    interface: str
    cidr: str
    gateway: str | None = None
    ipam: str = IPAM_CONTROLLER
    dns_domain: str = "ciao.local"
    lease_time: int = 3600
    range_start: str | None = None
    range_end: str | None = None
    ipv6_cidr: str = ""  # dual stack: router advertisements for it, DHCPv6, AAAA records
    ipv6_mode: str = ""

    def validated(self) -> DhcpServerSpec:
        validate.ident(self.network_id)
        validate.netns(self.netns)
        validate.ifname(self.interface)
        net = validate.network(self.cidr)
        if self.gateway:
            validate.host_ip(self.gateway, net)
        if self.ipam not in IPAM_MODES:
            raise InvalidArgument(f"ipam must be one of {IPAM_MODES} for a managed server")
        validate.domain(self.dns_domain)
        if not 120 <= int(self.lease_time) <= 86400 * 365:
            raise InvalidArgument("lease_time must be 120 s .. 1 year")
        if self.ipam == IPAM_DYNAMIC:
            start, end = self.dynamic_range()
            if start > end:
                raise InvalidArgument(f"empty DHCP range {start}-{end}")
        if self.ipv6_cidr:
            net6 = validate.ipv6_network(self.ipv6_cidr)
            if self.ipv6_mode not in IPV6_MODES:
                raise InvalidArgument(f"ipv6_mode must be one of {IPV6_MODES}")
            if self.ipv6_mode == IPV6_SLAAC and net6.prefixlen != 64:
                raise InvalidArgument("ipv6_mode=slaac needs a /64")
        return self

    @property
    def network6(self) -> ipaddress.IPv6Network | None:
        return ipaddress.IPv6Network(self.ipv6_cidr) if self.ipv6_cidr else None

    @property
    def dhcpv6_network(self) -> ipaddress.IPv6Network | None:
        """The prefix whose addresses this server hands out by DHCPv6 (reservations)."""
        return self.network6 if self.ipv6_mode == IPV6_DHCPV6 else None

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    def dynamic_range(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        """The given range, or by default the upper half of the subnet's hosts."""
        net = self.network
        if self.range_start and self.range_end:
            return validate.host_ip(self.range_start, net), validate.host_ip(self.range_end, net)
        first, last = net.network_address + 1, net.broadcast_address - 1
        return first + (int(last) - int(first)) // 2, last


class DhcpServer:
    """One network's dnsmasq. All methods are idempotent."""

    def __init__(self, spec: DhcpServerSpec, state_dir: str | os.PathLike[str]) -> None:
        self.spec = spec.validated()
        self._locate(state_dir, spec.network_id)

    @classmethod
    def on_disk(cls, state_dir: str | os.PathLike[str], network_id: str) -> DhcpServer:
        """A server known only by its directory, to stop or remove it (the network may be
        gone, and with it the spec): only the process and file methods apply."""
        server = cls.__new__(cls)
        server.spec = None
        server._locate(state_dir, validate.ident(network_id))
        return server

    def _locate(self, state_dir: str | os.PathLike[str], network_id: str) -> None:
        self.dir = Path(state_dir) / f"dhcp-{network_id}"
        self.pid_file = self.dir / "dnsmasq.pid"
        self.lease_file = self.dir / "leases"
        self.log_file = self.dir / "dnsmasq.log"
        self.events_file = self.dir / "events.jsonl"
        self.hosts_dir = self.dir / "hosts.d"
        self.names_dir = self.dir / "names.d"  # AAAA records, a hosts file per MAC
        self.hook = self.dir / "lease_hook"

    # --- process ----------------------------------------------------------------

    def command(self) -> list[str]:
        spec, net = self.spec, self.spec.network
        if spec.ipam == IPAM_CONTROLLER:
            dhcp_range = f"{net.network_address},static,{net.netmask},{spec.lease_time}"
        else:
            start, end = spec.dynamic_range()
            dhcp_range = f"{start},{end},{net.netmask},{spec.lease_time}"
        args = [
            "ip",
            "netns",
            "exec",
            spec.netns,
            "dnsmasq",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            f"--interface={spec.interface}",
            f"--dhcp-range={dhcp_range}",
            f"--dhcp-leasefile={self.lease_file}",
            f"--dhcp-hostsdir={self.hosts_dir}",
            f"--dhcp-script={self.hook}",
            f"--pid-file={self.pid_file}",
            f"--log-facility={self.log_file}",
            "--log-dhcp",
            "--no-ping",  # else every new dynamic lease waits 3 s for an ICMP probe
            "--dhcp-authoritative",
            f"--domain={spec.dns_domain}",
            f"--local=/{spec.dns_domain}/",
            "--expand-hosts",
            # Root only to bind in the namespace, then this user (never root: checked).
            f"--user={DNSMASQ_USER}",
            f"--group={DNSMASQ_USER}",
            # The lease hook runs in the helper forked before the drop (dnsmasq's default,
            # said explicitly): the agent's interpreter may be one only root can reach.
            "--dhcp-scriptuser=root",
        ]
        if spec.ipam == IPAM_CONTROLLER:
            # Known MACs only (a dhcp-host line in hosts.d): the static range already
            # offers nothing to others, and this also ignores their REQUESTs, INFORMs,
            # RELEASEs and DECLINEs instead of answering (a NAK) or acting on them.
            args.append("--dhcp-ignore=tag:!known")
        if spec.gateway:
            args.append(f"--dhcp-option=option:router,{spec.gateway}")
        else:
            args.append("--dhcp-option=option:router")  # no gateway: send none
        if (net6 := spec.network6) is not None:
            args += self._ipv6_args(net6)
        return args

    def _ipv6_args(self, net6: ipaddress.IPv6Network) -> list[str]:
        """Router advertisements for the prefix, with the A (SLAAC) or the M (DHCPv6) flag;
        DHCPv6 serves reservations only (`static`, and unknown clients are ignored as in
        IPv4). Router lifetime 0: dnsmasq announces the prefix but is no router, so no
        guest takes it for a default route. AAAA records come from `names.d`."""
        spec = self.spec
        mode = "ra-only" if spec.ipv6_mode == IPV6_SLAAC else "static"
        return [
            f"--dhcp-range={net6.network_address},{mode},{net6.prefixlen},{spec.lease_time}",
            "--enable-ra",
            f"--ra-param={spec.interface},0,0",
            f"--hostsdir={self.names_dir}",
        ]

    def pid(self) -> int | None:
        """The pid of this server's dnsmasq if it is running, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_our_dnsmasq(pid, self.pid_file) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self) -> int:
        """Start dnsmasq if it is not running; returns its pid."""
        pid = self.pid()
        if pid:
            return pid
        self._prepare_files()
        self._kill_leftovers()
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        deadline = time.monotonic() + 3.0
        while True:
            done = subprocess.run(self.command(), capture_output=True, text=True, check=False)
            # A just-killed dnsmasq's sockets can take a moment to go away.
            if "already in use" not in done.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if done.returncode != 0:
            raise DriverError(
                f"dnsmasq for {self.spec.network_id} failed ({done.returncode}): "
                f"{done.stderr.strip() or self._log_tail()}"
            )
        pid = self._wait_for_pid()
        log.info("dnsmasq for network %s running as pid %d", self.spec.network_id, pid)
        return pid

    def ensure_running(self) -> bool:
        """Restart a dead dnsmasq (same lease file). True if it had to be (re)started."""
        if self.is_running():
            return False
        self.start()
        return True

    def running_command(self) -> list[str] | None:
        """The argv of this server's running dnsmasq (from `dnsmasq` on), or None."""
        pid = self.pid()
        if pid is None:
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return None
        return [arg.decode(errors="replace") for arg in argv if arg]

    def restart_if_changed(self) -> bool:
        """A running dnsmasq started from another spec (the network's domain, range or
        IPAM changed; an older agent's options) is stopped so that the next start runs
        the current command line; leases survive in the lease file. True if stopped."""
        running = self.running_command()
        wanted = self.command()[4:]  # after `ip netns exec <netns>`: dnsmasq's own argv
        if running is None or running[1:] == wanted[1:]:
            return False
        log.info("dnsmasq of network %s runs an old command line: restart", self.spec.network_id)
        self.stop()
        return True

    def stop(self, timeout: float = 3.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
        self._kill_leftovers()
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def remove(self) -> None:
        """Stop and forget everything, leases included (the network is deleted)."""
        self.stop()
        for path in sorted(self.dir.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.dir.rmdir()

    def _prepare_files(self) -> None:
        """The server's directory: root's, 0755 (dnsmasq, as its user, reads hosts.d but
        can neither write here nor replace the hook root runs); leases kept across
        restarts (MAC -> IP survives), root's, opened by dnsmasq before it drops root."""
        user = dnsmasq_user()
        if user.pw_uid == 0:
            raise DriverError(f"{DNSMASQ_USER} is root: dnsmasq would not drop privileges")
        self.hosts_dir.mkdir(parents=True, exist_ok=True)
        self.names_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.dir, self.hosts_dir, self.names_dir):
            os.chmod(directory, 0o755)
        try:
            install_hook("lease_hook", self.hook)
        except UntrustedPath as exc:
            raise DriverError(f"dnsmasq for {self.spec.network_id}: {exc}") from None
        self.lease_file.touch(exist_ok=True)
        self._check_reachable()

    def _check_reachable(self) -> None:
        """dnsmasq reads hosts.d as its own user after the drop: every directory above it
        must let others through (a 0700 one would leave it without reservations)."""
        for directory in [self.hosts_dir, *self.hosts_dir.parents]:
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                raise DriverError(
                    f"dnsmasq for {self.spec.network_id} runs as {DNSMASQ_USER}, which cannot "
                    f"reach {self.hosts_dir}: {directory} is not searchable by others"
                )

    # --- reservations -----------------------------------------------------------

    def add_reservation(self, reservation: Reservation) -> None:
        """Write (or rewrite) one reservation; a new file is picked up by inotify."""
        self.update_reservations({reservation.mac: reservation})

    def remove_reservation(self, mac: str) -> None:
        self.update_reservations({mac: None})

    def update_reservations(self, changes: Mapping[str, Reservation | None]) -> None:
        """These MACs' reservations made as given, or removed (None, their leases
        released); every other stays as it is. A launch's refresh costs the same on a
        network of ten instances or of ten thousand."""
        changes = {validate.mac(mac): r for mac, r in changes.items()}
        self._apply_lines(
            {mac: self._line(r) for mac, r in changes.items()}, self._names_of(changes)
        )

    def set_reservations(
        self, reservations: Iterable[Reservation], keep: Collection[str] = ()
    ) -> None:
        """Make the reservations exactly these (the controller's desired state), except
        for the MACs in `keep`, left as they are (a newer change of theirs was applied)."""
        wanted = {validate.mac(r.mac): r for r in reservations}
        keep = {validate.mac(mac) for mac in keep}
        self.hosts_dir.mkdir(parents=True, exist_ok=True)
        on_disk = {path.name.replace("-", ":") for path in self.hosts_dir.iterdir()}
        if self.names_dir.is_dir():
            on_disk |= {path.name.replace("-", ":") for path in self.names_dir.iterdir()}
        self.update_reservations({mac: wanted.get(mac) for mac in (set(wanted) | on_disk) - keep})

    def _line(self, reservation: Reservation | None) -> str | None:
        if reservation is None:
            return None
        return reservation.line(self.spec.network, self.spec.dhcpv6_network)

    def _names_of(self, changes: Mapping[str, Reservation | None]) -> dict[str, str | None]:
        """AAAA records: a hosts file per dual-stack reservation with a name in names.d,
        which dnsmasq re-reads (and forgets deleted files of) by inotify itself."""
        net6 = self.spec.network6
        return {
            mac: (r.aaaa(net6) if r is not None and net6 is not None else None)
            for mac, r in changes.items()
        }

    def _apply_lines(self, lines: dict[str, str | None], names: dict[str, str | None]) -> None:
        """Each MAC's dhcp-host line (None: none) and AAAA line written where they differ;
        one SIGHUP if a line dnsmasq had read changed or went (it adds new files by
        inotify but drops old entries only on SIGHUP)."""
        stale, removed = False, []
        had_names = self.names_dir.is_dir()  # none on an IPv4-only network
        for mac, line in lines.items():
            changed, existed = _put(self._reservation_path(mac), line, self._write_file)
            stale |= changed and existed
            if changed and line is None:
                removed.append(mac)
        for mac, line in names.items():
            if line is not None or had_names:
                _put(self.names_dir / mac.replace(":", "-"), line, self._write_file)
        if stale:
            self.reload()
        self.release_leases(removed)

    def leases(self) -> list[tuple[str, str]]:
        """(mac, ip) of every lease in dnsmasq's lease file."""
        try:
            lines = self.lease_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            fields = line.split()
            if len(fields) >= 3 and ":" in fields[1]:
                found.append((fields[1].lower(), fields[2]))
        return found

    def release_leases(self, macs: Iterable[str]) -> None:
        """Make dnsmasq drop these MACs' leases now (a DHCPRELEASE on their behalf): a
        removed reservation's client is gone, and its lease would otherwise keep the
        address from the next reservation for the whole lease time."""
        wanted = {mac.lower() for mac in macs}
        pairs = [f"{mac}={ip}" for mac, ip in self.leases() if mac in wanted]
        if not pairs or not self.is_running():
            return
        script = Path(__file__).resolve().parent / "release.py"
        done = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.spec.netns,
                sys.executable,
                STDLIB_ONLY,
                str(script),
                self.spec.interface,
                *pairs,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if done.returncode != 0:
            log.warning("DHCPRELEASE for %s failed: %s", pairs, done.stderr.strip())

    def reservations(self) -> dict[str, str]:
        """mac -> dhcp-host line, as on disk."""
        if not self.hosts_dir.is_dir():
            return {}
        return {p.name.replace("-", ":"): p.read_text().strip() for p in self.hosts_dir.iterdir()}

    def reload(self) -> None:
        """SIGHUP: re-read reservations and drop removed ones, without a restart."""
        pid = self.pid()
        if pid:
            _signal(pid, signal.SIGHUP)

    def events(self, offset: int = 0) -> LeaseEventReader:
        return LeaseEventReader(self.events_file, offset)

    # --- helpers ----------------------------------------------------------------

    def _reservation_path(self, mac: str) -> Path:
        return self.hosts_dir / validate.mac(mac).replace(":", "-")

    def _write_file(self, path: Path, line: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)  # hosts.d or names.d
        # Written beside hosts.d / names.d and renamed in: inotify never sees a half file.
        tmp = self.dir / f".{path.name}.tmp"
        tmp.write_text(line)
        os.chmod(tmp, 0o644)  # dnsmasq reads it as its own user, whatever our umask
        os.replace(tmp, path)

    def _kill_leftovers(self, timeout: float = 2.0) -> None:
        """A killed dnsmasq leaves its forked script helper holding the sockets; it is
        found by our unique --pid-file argument (never by process name)."""
        leftovers = _processes_with_arg(f"--pid-file={self.pid_file}")
        for pid in leftovers:
            _signal(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while any(_alive(pid) for pid in leftovers) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _wait_for_pid(self, timeout: float = 3.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid:
                return pid
            time.sleep(0.01)
        raise DriverError(f"dnsmasq for {self.spec.network_id} wrote no pid: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_file.read_text().splitlines()[-5:])
        except FileNotFoundError:
            return "(no log)"


def _put(path: Path, line: str | None, write: Callable[[Path, str], None]) -> tuple[bool, bool]:
    """Make the file hold `line` (None: no file). Returns (changed, existed before)."""
    try:
        current = path.read_text()
    except FileNotFoundError:
        current = None
    if current == line:
        return False, current is not None
    if line is None:
        path.unlink()
    else:
        write(path, line)
    return True, current is not None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _is_our_dnsmasq(pid: int, pid_file: Path) -> bool:
    """Guards against pid reuse: the process must be dnsmasq started with our pid file."""
    if not _alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    return f"--pid-file={pid_file}".encode() in argv


def _processes_with_arg(arg: str) -> list[int]:
    wanted = arg.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in argv and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
