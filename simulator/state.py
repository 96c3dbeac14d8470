"""Persistent state of one simulator: ``<base>/<name>/state.json`` under fcntl locks.

Several processes (the CLI, one node agent per host, tests) drive one simulator at
once, so every mutation is a transaction: take the lock, re-read the file, change the
dict, write it atomically (tmp + rename), release.  Readers read the file without a
lock: the rename makes every version they see complete.

Two kinds of lock, always taken in this order: a host's lock, then the global one.
Changes to one host's devices (``host_transaction``) hold only that host's lock while
their datapath commands run, and take the global lock just to merge the host's part
into the file, so agents of different hosts work in parallel. Everything else
(fabric, instances, underlays) is a short global ``transaction``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import NotFound

State = dict[str, Any]


class StateStore:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / "state.json"
        self.lock_path = state_dir / "lock"
        self.pid_dir = state_dir / "pids"
        self.log_dir = state_dir / "logs"

    def init(self, state: State) -> None:
        for d in (self.dir, self.pid_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.lock_path.touch()
        self.write(state)

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> State:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            raise NotFound(f"no simulator state at {self.path}") from None

    def write(self, state: State) -> None:
        tmp = self.path.with_suffix(f".tmp.{os.getpid()}")
        tmp.write_text(json.dumps(state, separators=(",", ":")))
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with _flocked(self.lock_path, self.dir):
            yield

    @contextlib.contextmanager
    def host_transaction(self, host: str, always: bool = False) -> Iterator[State]:
        """Lock one host, read, yield the dict; then merge that host's part back under the
        global lock (also when the block raised, if ``always``). Only the host's part is
        written: a change to anything else in the dict is lost, by design."""
        with _flocked(self.dir / f"lock.{host}", self.dir):
            state = self.read()
            succeeded = False
            try:
                yield state
                succeeded = True
            finally:
                if (succeeded or always) and host in state["hosts"]:
                    with self.locked():
                        fresh = self.read()
                        fresh["hosts"][host] = state["hosts"][host]
                        self.write(fresh)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Lock, read, yield the dict; write it back only if the block succeeded."""
        with self.locked():
            state = self.read()
            yield state
            self.write(state)


@contextlib.contextmanager
def _flocked(lock_path: Path, state_dir: Path) -> Iterator[None]:
    if not (state_dir / "lock").exists():
        raise NotFound(f"no simulator at {state_dir}")
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pidfile_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_matches(pid: int, marker: str) -> bool:
    """True if process ``pid`` is alive and its command line mentions ``marker``.

    The marker is the pid file's own path: it protects against a recycled pid.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return marker in cmdline


def pidfile_process(path: Path) -> int | None:
    """The live process that owns this pid file, or None."""
    pid = pidfile_pid(path)
    if pid is not None and process_matches(pid, str(path)):
        return pid
    return None
