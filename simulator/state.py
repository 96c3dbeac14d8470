"""Persistent state of one simulator, under fcntl locks: ``<base>/<name>/state.json``
(topology, fabric, instances, underlays) and one ``hosts/<host>/state.json`` per host
(its PFs and every VF's config and location).

Several processes (the CLI, one node agent per host, tests) drive one simulator at
once, so every mutation is a transaction: take the lock, re-read, change the dict,
write atomically (tmp + rename), release. Readers read without a lock: the rename makes
every version they see complete.

A change to one host's devices (``host_transaction``) holds only that host's lock, reads
the small shared file and that host's file, and writes that host's file alone: agents of
different hosts never wait for each other, and an agent's cost does not grow with the
number of hosts. Changes to the shared part are a short ``transaction`` that sees and
writes no host. Locks nest in one order only: a host's, then the shared one.
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
        self._write_shared(state)
        for host, host_state in state.get("hosts", {}).items():
            self._write_host(host, host_state)

    def exists(self) -> bool:
        return self.path.exists()

    def host_path(self, host: str) -> Path:
        return self.dir / "hosts" / host / "state.json"

    def read(self) -> State:
        """Everything: the shared part and every host, in topology order."""
        state = self.read_shared()
        names = [h["name"] for h in state["topology"]["hosts"]]
        state["hosts"] = {n: h for n in names if (h := self._read_host(n)) is not None}
        return state

    def read_host(self, host: str) -> State:
        """The shared part and this one host (``hosts`` is empty if it has no state)."""
        state = self.read_shared()
        host_state = self._read_host(host)
        state["hosts"] = {host: host_state} if host_state is not None else {}
        return state

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with _flocked(self.lock_path, self.dir):
            yield

    @contextlib.contextmanager
    def transaction(self) -> Iterator[State]:
        """The shared part (no ``hosts``), locked; written back if the block succeeded."""
        with self.locked():
            state = self.read_shared()
            yield state
            self._write_shared(state)

    @contextlib.contextmanager
    def host_transaction(self, host: str, always: bool = False) -> Iterator[State]:
        """Lock one host and yield ``read_host(host)``; then write that host's part (also
        when the block raised, if ``always``: the datapath may have changed already).
        Changes to the shared part are not written: they need ``transaction``."""
        with _flocked(self.dir / f"lock.{host}", self.dir):
            state = self.read_host(host)
            succeeded = False
            try:
                yield state
                succeeded = True
            finally:
                if (succeeded or always) and host in state["hosts"]:
                    self._write_host(host, state["hosts"][host])

    def read_shared(self) -> State:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            raise NotFound(f"no simulator state at {self.path}") from None

    def _read_host(self, host: str) -> State | None:
        try:
            return json.loads(self.host_path(host).read_text())
        except FileNotFoundError:
            return None

    def _write_shared(self, state: State) -> None:
        _write_atomically(self.path, {k: v for k, v in state.items() if k != "hosts"})

    def _write_host(self, host: str, host_state: State) -> None:
        path = self.host_path(host)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, host_state)


def _write_atomically(path: Path, data: Any) -> None:
    tmp = path.with_suffix(f".tmp.{os.getpid()}")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


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
