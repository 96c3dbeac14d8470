"""Child processes of a local cluster: started in their own session (Ctrl-C reaches
only us, and we stop them in order), logged to files, tracked by pid files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


class ManagedProcess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], run_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = run_dir / "logs" / f"{name}.log"
        self.pid_path = run_dir / "pids" / f"{name}.pid"
        self.popen: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
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


def stop_from_pid_files(run_dir: Path) -> None:
    """After a crash of the launcher: stop what its pid files name, if still ours."""
    for pid_file in sorted((run_dir / "pids").glob("*.pid")):
        with contextlib.suppress(ValueError, FileNotFoundError):
            pid = int(pid_file.read_text())
            if started_by(pid, run_dir):
                stop_group(pid, 5.0)
        pid_file.unlink(missing_ok=True)
