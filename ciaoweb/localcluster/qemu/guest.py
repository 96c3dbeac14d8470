"""A QEMU guest with emulated Intel 82576 (igb) SR-IOV NICs, driven from the host.

    spec = GuestSpec("ciao-rn1", pfs=[PfSpec("pf0", wire="physnet1"), PfSpec("pf1")])
    with Guest(spec, run_dir).start() as guest:   # boots; returns once qemu-ga answers
        guest.exec(["ip", "link", "show", "pf0"]).check(...)
        guest.exec_prefix + ["ip", "link"]        # the same, as an argv prefix

- `-M q35`, each igb PF behind its own pcie-root-port (SR-IOV needs PCIe), `-smp 1`
  (TCG with two vCPUs stalled in about 1 boot of 15), TCG unless a normal KVM exists.
- The host's `/` read-only over 9p under a tmpfs overlay: the project and its venv run
  inside at the paths they have on the host. `share` (read-write 9p) appears at its host
  path too, for results.
- PF wiring: PFs of one guest on the same wire share a QEMU hub; a wire that leaves the
  guest goes over `-netdev dgram` unix sockets (`Wire`), one per peer guest, all ports of
  that hub (so one guest's QEMU can be the switch of a star). Each wire is one emulated
  L2 segment carrying the NICs' 802.1Q tags. A virtio-net NIC on QEMU user networking
  (10.0.2.15, gateway 10.0.2.2 = the host's loopback) is the management path; `tunnel`
  adds a virtio-net NIC `ciao-tun` on the wire "tunnel" with that address (the VXLAN
  underlay of overlay networks between guests).
- Commands run through qemu-ga (`qga.py`). Stop: poweroff inside, then SIGKILL by the
  pid file. Every name carries the `ciao` prefix; each QEMU has a pid file in the run dir.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ciaoweb.localcluster.processes import RUN_DIR_ENV, ManagedProcess, stop_from_pid_files

from .assets import STAGE2, Assets, accelerator
from .qga import ExecResult, QgaClient, QgaError

_NAME_RE = re.compile(r"^ciao[a-z0-9-]{1,27}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
MGMT_MAC = "52:54:00:c1:a0:{:02x}"
UNIX_PATH_MAX = 107
# x86-64-v2 (what wheels may assume: qemu64 lacks SSE4.2/POPCNT, SIGILL) without
# `-cpu max`'s extras, which made Python imports ~3x slower under TCG here.
TCG_CPU = "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16"


@dataclass(frozen=True)
class PfSpec:
    """One igb PF: its netdev name in the guest and the wire (physnet) it is cabled to."""

    name: str
    wire: str | None = None


@dataclass
class GuestSpec:
    name: str
    pfs: list[PfSpec] = field(default_factory=list)
    index: int = 1  # makes the NICs' MAC addresses unique across guests (1-250)
    memory_mib: int = 384
    mgmt: bool = True
    share: Path | None = None
    # "10.99.0.1/24": a NIC `ciao-tun` on the wire "tunnel" with this address.
    tunnel: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"guest name {self.name!r}: ciao prefix, [a-z0-9-], <= 31 chars")
        if not 1 <= self.index <= 250:
            raise ValueError("guest index must be 1-250")
        for pf in self.pfs:
            if not _IFNAME_RE.match(pf.name):
                raise ValueError(f"bad PF name {pf.name!r}")

    def pf_mac(self, n: int) -> str:
        return f"52:54:00:c1:{self.index:02x}:{n:02x}"

    @property
    def tunnel_mac(self) -> str:
        return f"52:54:00:c1:{self.index:02x}:f0"


@dataclass(frozen=True)
class Wire:
    """Where one guest's segment of a wire goes: the unix dgram sockets (local, remote)."""

    local: Path
    remote: Path


def pair_wires(run_root: Path, wire: str, a: str, b: str) -> tuple[Wire, Wire]:
    """A point-to-point wire between guests a and b (each end's dgram socket paths)."""
    sock_a, sock_b = (
        run_root / "wires" / f"{wire}-{a}.sock",
        run_root / "wires" / f"{wire}-{b}.sock",
    )
    return Wire(sock_a, sock_b), Wire(sock_b, sock_a)


class Guest:
    def __init__(
        self,
        spec: GuestSpec,
        run_dir: Path,
        *,
        wires: dict[str, list[Wire]] | None = None,
        assets: Assets | None = None,
        accel: str | None = None,
    ) -> None:
        self.spec = spec
        self.run_dir = Path(run_dir).resolve()
        self.wires = wires or {}
        self.assets = assets or Assets.find()
        self.accel = accel or accelerator()
        self.qga_socket = self.run_dir / "qga.sock"
        self.qmp_socket = self.run_dir / "qmp.sock"
        self.console_log = self.run_dir / "console.log"
        self.process = ManagedProcess(spec.name, [], {}, self.run_dir)
        self.boot_seconds: float | None = None
        for path in [self.qga_socket, self.qmp_socket, *self._wire_sockets()]:
            if len(str(path)) > UNIX_PATH_MAX:
                raise ValueError(f"unix socket path too long (> {UNIX_PATH_MAX}): {path}")

    # --- the command line ------------------------------------------------------------

    def argv(self) -> list[str]:
        spec = self.spec
        append = [
            "console=ttyS0",
            "panic=-1",
            "quiet",
            f"ciao.stage2={STAGE2}",
            f"ciao.name={spec.name}",
        ]
        renames = [f"{spec.pf_mac(n)}={pf.name}" for n, pf in enumerate(spec.pfs)]
        if spec.tunnel:
            renames.append(f"{spec.tunnel_mac}=ciao-tun")
            append.append(f"ciao.tunnel={spec.tunnel}")
        if renames:
            append.append("ciao.rename=" + ",".join(renames))
        argv = [
            self.assets.qemu,
            "-name",
            f"{spec.name},process={spec.name}",
            "-accel",
            self.accel,
            # TCG's default qemu64 lacks SSE4/AVX: wheels built for x86-64-v2+ die of SIGILL.
            "-cpu",
            os.environ.get("CIAO_QEMU_CPU") or ("host" if self.accel == "kvm" else TCG_CPU),
            "-M",
            "q35",
            "-smp",
            "1",
            "-m",
            str(spec.memory_mib),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-pidfile",
            str(self.run_dir / "qemu.pid"),
            "-chardev",
            f"file,id=con0,path={self.console_log}",
            "-serial",
            "chardev:con0",
            "-qmp",
            f"unix:{self.qmp_socket},server=on,wait=off",
            "-kernel",
            str(self.assets.kernel),
            "-initrd",
            str(self.assets.initramfs),
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,id=hostroot",
            "-device",
            "virtio-serial-pci,id=vser0",
            "-chardev",
            f"socket,id=qga0,path={self.qga_socket},server=on,wait=off",
            "-device",
            "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        ]
        if spec.share is not None:
            argv += [
                "-virtfs",
                f"local,path={spec.share},mount_tag=ciaoshare,security_model=none,id=ciaoshare",
            ]
            append.append(f"ciao.share={spec.share}")
        if spec.mgmt:
            mac = MGMT_MAC.format(spec.index)
            argv += [
                "-netdev",
                "user,id=mgmt0",
                "-device",
                f"virtio-net-pci,netdev=mgmt0,mac={mac}",
            ]
            append.append(f"ciao.mgmt={mac}")
        argv += self._nic_args()
        return [*argv, "-append", " ".join(append)]

    def _wire_sockets(self) -> list[Path]:
        return [w.local for ends in self.wires.values() for w in ends]

    def _nic_args(self) -> list[str]:
        """igb PFs (and the tunnel NIC); a NIC is on a hub of its wire's NICs in this
        guest, and the hub has a dgram port per peer guest of the wire."""
        nics = [
            (f"igb,bus=rp{n}", pf.wire, self.spec.pf_mac(n)) for n, pf in enumerate(self.spec.pfs)
        ]
        if self.spec.tunnel:
            nics.append(("virtio-net-pci", "tunnel", self.spec.tunnel_mac))
        args: list[str] = []
        by_wire: dict[str, list[int]] = {}
        for n, (_device, wire, _mac) in enumerate(nics):
            if wire is not None:
                by_wire.setdefault(wire, []).append(n)
        netdev_of: dict[int, str] = {}
        for hub, (wire, members) in enumerate(sorted(by_wire.items())):
            remotes = self.wires.get(wire, [])
            if len(members) == 1 and len(remotes) == 1:
                netdev_of[members[0]] = self._dgram(args, f"w{hub}", remotes[0])
                continue
            for n in members:
                args += ["-netdev", f"hubport,id=nic{n},hubid={hub}"]
                netdev_of[n] = f"nic{n}"
            for k, remote in enumerate(remotes):
                uplink = self._dgram(args, f"w{hub}p{k}", remote)
                args += ["-netdev", f"hubport,id=hub{hub}p{k},hubid={hub},netdev={uplink}"]
        for n, (device, _wire, mac) in enumerate(nics):
            if n not in netdev_of:  # unwired: a hub of its own (carrier, no peer)
                hub = 100 + n
                args += ["-netdev", f"hubport,id=nic{n},hubid={hub}"]
                netdev_of[n] = f"nic{n}"
            if device.startswith("igb"):
                args += ["-device", f"pcie-root-port,id=rp{n},chassis={n + 1}"]
            args += ["-device", f"{device},netdev={netdev_of[n]},mac={mac}"]
        return args

    @staticmethod
    def _dgram(args: list[str], netdev: str, wire: Wire) -> str:
        wire.local.parent.mkdir(parents=True, exist_ok=True)
        wire.local.unlink(missing_ok=True)
        args += [
            "-netdev",
            f"dgram,id={netdev},local.type=unix,local.path={wire.local},"
            f"remote.type=unix,remote.path={wire.remote}",
        ]
        return netdev

    # --- lifecycle -------------------------------------------------------------------

    def start(self, wait: bool = True, timeout: float = 180.0) -> Guest:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.qga_socket, self.qmp_socket, self.console_log):
            path.unlink(missing_ok=True)
        self.process.argv = self.argv()
        self.process.env = {"PATH": os.environ.get("PATH", ""), RUN_DIR_ENV: str(self.run_dir)}
        self._t0 = time.monotonic()
        self.process.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 180.0) -> float:
        """Until qemu-ga answers; returns seconds since start (boot to ready)."""
        client = QgaClient(self.qga_socket, timeout=2.0)
        deadline = time.monotonic() + timeout
        while True:
            if not self.process.alive():
                raise RuntimeError(f"{self.spec.name}: QEMU exited\n{self.diagnostics()}")
            with contextlib.suppress(OSError, QgaError, TimeoutError):
                client.ping()
                self.boot_seconds = time.monotonic() - self._t0
                return self.boot_seconds
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.spec.name}: no guest agent after {timeout} s\n{self.diagnostics()}"
                )
            time.sleep(0.2)

    def exec(
        self,
        argv: list[str],
        *,
        timeout: float = 120.0,
        env: dict[str, str] | None = None,
        input: bytes | None = None,  # noqa: A002
    ) -> ExecResult:
        return QgaClient(self.qga_socket).exec(argv, env=env, input=input, timeout=timeout)

    @property
    def exec_prefix(self) -> list[str]:
        """An argv prefix that runs the rest inside this guest (exit code and output)."""
        return self.exec_command()

    def exec_command(
        self,
        *,
        timeout: float | None = None,
        poll: float | None = None,
        env: dict[str, str] | None = None,
    ) -> list[str]:
        """exec_prefix with options: a timeout, a slower status poll, environment."""
        options: list[str] = []
        if timeout is not None:
            options += ["--timeout", str(timeout)]
        if poll is not None:
            options += ["--poll", str(poll)]
        for key, value in (env or {}).items():
            options += ["-e", f"{key}={value}"]
        return [
            sys.executable,
            "-m",
            "ciaoweb.localcluster.qemu",
            "exec",
            *options,
            str(self.qga_socket),
            "--",
        ]

    def stop(self, timeout: float = 15.0) -> None:
        """Clean poweroff from inside; SIGTERM/SIGKILL by the process group if it hangs."""
        popen = self.process.popen
        if popen is not None and popen.poll() is None:
            with contextlib.suppress(OSError, QgaError, TimeoutError):
                # Not waited for: the guest is gone before it could answer.
                client = QgaClient(self.qga_socket, timeout=3.0)
                client.call("guest-exec", {"path": "/run/busybox", "arg": ["poweroff", "-f"]})
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=timeout)
        self.process.stop(timeout=3.0)
        for path in (self.qga_socket, self.qmp_socket, *self._wire_sockets()):
            path.unlink(missing_ok=True)

    def diagnostics(self, lines: int = 40) -> str:
        try:
            console = self.console_log.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            console = []
        return "console:\n" + "\n".join(console) + "\nqemu:\n" + self.process.log_tail(lines)

    def __enter__(self) -> Guest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def clean(run_root: Path) -> None:
    """After a crash: end every QEMU the pid files under run_root still name (if ours)."""
    for pids in sorted(Path(run_root).resolve().glob("**/pids")):
        stop_from_pid_files(pids.parent)
