"""Persistent state of one simulator: ``<base>/<name>/state.json`` under an fcntl lock.

Several processes (the CLI, one node agent per host, tests) drive one simulator at
once, so every mutation is ``with store.transaction() as st: ...``: take the
exclusive lock, re-read the file, change the dict, write it atomically (tmp +
rename), release.  Readers read the file without the lock: the rename makes every
version they see complete.
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
        if not self.lock_path.exists():
            raise NotFound(f"no simulator at {self.dir}")
        with open(self.lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """Lock, read, yield the dict; write it back only if the block succeeded."""
        with self.locked():
            state = self.read()
            yield state
            self.write(state)

    @contextlib.contextmanager
    def transaction_always(self) -> Iterator[State]:
        """Like transaction() but also writes when the block raises.

        Used where the datapath has already changed before a later step failed,
        so the state must record what is now true (e.g. a fault that was consumed).
        """
        with self.locked():
            state = self.read()
            try:
                yield state
            finally:
                self.write(state)


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
