"""Child processes of a local cluster: started in their own session (Ctrl-C reaches
only us, and we stop them in order), logged to files, tracked by pid files, and killed
by the kernel when the launcher dies (PR_SET_PDEATHSIG). After a crash, `clean_clusters`
ends what the pid files name and removes the cluster's simulator."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ciaoweb.core.pdeathsig import die_with_parent

REPO = Path(__file__).resolve().parents[2]


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        run_dir: Path,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.pass_fds = pass_fds  # e.g. a listening socket several servers share
        self.log_path = run_dir / "logs" / f"{name}.log"
        self.pid_path = run_dir / "pids" / f"{name}.pid"
        self.popen: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        # Its own session keeps Ctrl-C away from it, so without PDEATHSIG a launcher
        # killed by SIGKILL would leave it running. The kernel sends the signal when the
        # *thread* that forked exits: start processes from a thread that lives as long.
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
            pass_fds=self.pass_fds,
        )
        log.close()
        self.pid_path.write_text(str(self.popen.pid))
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (fault injection in tests)."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL what is left after `timeout`."""
        if self.popen is not None:
            # Reap while polling: our own exited child stays a zombie, and a zombie keeps
            # its process group alive for killpg(0), so every stop took the full timeout.
            stop_group(self.popen.pid, timeout, reap=self.popen.poll)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=1)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def stop_all(processes: list[ManagedProcess], timeout: float = 10.0) -> None:
    """Stop several processes concurrently (each one's SIGTERM wait overlaps)."""
    from concurrent.futures import ThreadPoolExecutor

    if processes:
        with ThreadPoolExecutor(max_workers=len(processes)) as pool:
            list(pool.map(lambda process: process.stop(timeout), processes))


def stop_group(pgid: int, timeout: float, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM the group, SIGKILL it after `timeout`. `reap` collects the leader when it
    is our child (waitpid): until then it is a zombie that still counts as the group."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if reap is not None:
                reap()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


RUN_DIR_ENV = "CIAO_CLUSTER_RUN_DIR"


def started_by(pid: int, run_dir: Path) -> bool:
    """True when the process carries our run-dir marker (a reused pid would not)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{RUN_DIR_ENV}={run_dir}".encode() in environ


def runs_dir() -> Path:
    """Where every local cluster has its run dir: `<CIAO_VAR_DIR or var>/cluster/<name>`."""
    return Path(os.environ.get("CIAO_VAR_DIR", REPO / "var")) / "cluster"


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # Fields after "(comm)": state, ppid, pgrp.
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    members.append(int(entry.name))
    return members


def stop_from_pid_files(run_dir: Path, timeout: float = 5.0) -> None:
    """After a crash of the launcher: stop what its pid files name, if still ours.

    Each names a process group (our child leads its own session). The group is ours
    while any member carries our run-dir marker, also once its leader is gone: a pgid is
    not handed out again while a process is in that group, and what outlived a leader
    (a pool child, Celery's beat) is exactly what must go."""
    pid_files = sorted((run_dir / "pids").glob("*.pid"))
    groups = []
    for pid_file in pid_files:
        with contextlib.suppress(ValueError, FileNotFoundError):
            pgid = int(pid_file.read_text())
            if any(started_by(pid, run_dir) for pid in _group_members(pgid)):
                groups.append(pgid)
    if groups:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(groups)) as pool:
            list(pool.map(lambda pgid: stop_group(pgid, timeout), groups))
    for pid_file in pid_files:
        pid_file.unlink(missing_ok=True)


def stop_agent_daemons(sim_state_dir: Path) -> None:
    """dnsmasq servers the agents started daemonise and outlive them: stop them by their
    pid files (`agents/<host>/dhcp-*/dnsmasq.pid`), when the pid still runs that server."""
    from simulator.procs import terminate
    from simulator.state import pidfile_process

    pid_files = sorted(sim_state_dir.glob("agents/*/dhcp-*/dnsmasq.pid"))
    terminate(pid for pid in map(pidfile_process, pid_files) if pid is not None)
    for pid_file in pid_files:
        pid_file.unlink(missing_ok=True)


def clean_clusters(name: str | None = None) -> dict[str, list[str]]:
    """End local clusters that crashed (`make clean`): `name`'s, or every one with a run
    dir under the var dir. First the processes their pid files name, then their agents'
    dnsmasq servers, then the simulator clean: this cluster's simulator, or (no name)
    everything with our prefix. Nothing is found by process name. Returns the clusters
    and what the simulator clean removed."""
    from simulator import names
    from simulator.clean import clean

    if name is not None:
        clusters = [name]
    elif runs_dir().is_dir():
        clusters = sorted(d.name for d in runs_dir().iterdir() if d.is_dir())
    else:
        clusters = []
    for cluster in clusters:
        # The cluster's own processes, and its QEMU guests' (qemu/<host>/pids).
        for pids in sorted((runs_dir() / cluster).glob("**/pids")):
            stop_from_pid_files(pids.parent)
        for socket in (runs_dir() / cluster).glob("**/*.sock"):
            socket.unlink(missing_ok=True)
        # A cluster's simulator has its name (LocalCluster starts it so).
        stop_agent_daemons(names.base_dir() / cluster)
    if name is None:
        # Every cluster is ended: the demo's connection file names a dead server.
        (runs_dir().parent / "demo.json").unlink(missing_ok=True)
    return {"clusters": clusters, **clean(name)}
